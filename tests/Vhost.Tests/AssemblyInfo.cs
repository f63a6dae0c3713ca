using System.Runtime.Versioning;

// The library is Linux-only; so are its tests (PosixSignal.SIGWINCH, /proc, memfd).
[assembly: SupportedOSPlatform("linux")]
