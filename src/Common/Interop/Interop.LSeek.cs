using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal const int SEEK_SET = 0;
    internal const int SEEK_CUR = 1;
    internal const int SEEK_END = 2;

    [LibraryImport(Libc, EntryPoint = "lseek64", SetLastError = true)]
    internal static partial long lseek(int fd, long offset, int whence);
}
