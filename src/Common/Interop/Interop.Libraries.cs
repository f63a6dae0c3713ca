internal static partial class Interop
{
    /// <summary>The C library every import binds to (glibc on Debian: resolves to libc.so.6).</summary>
    internal const string Libc = "libc";

    /// <summary>True when the process runs on x86_64, where kernel structs have x86_64 layouts.</summary>
    internal static bool IsX64 => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;
}
