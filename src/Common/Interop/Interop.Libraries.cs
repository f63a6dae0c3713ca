internal static partial class Interop
{
    /// <summary>The C library every import binds to (glibc on Debian: resolves to libc.so.6).</summary>
    internal const string Libc = "libc";
}
