using System.Runtime.Versioning;

// vhost is Linux-only; the tests use Unix file modes and /proc.
[assembly: SupportedOSPlatform("linux")]
