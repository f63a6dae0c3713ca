using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    /// <summary><c>ioctl(fd, request, void* arg)</c>.</summary>
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, void* arg);

    /// <summary><c>ioctl(fd, request, unsigned long arg)</c>: the integer-argument form.</summary>
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, nuint arg);

    internal const int FIONREAD = 0x541B;
}
