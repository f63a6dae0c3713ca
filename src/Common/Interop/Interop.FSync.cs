using System.Runtime.InteropServices;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    internal static partial int fsync(int fd);

    [LibraryImport(Libc, EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int fdatasync(int fd);
}
