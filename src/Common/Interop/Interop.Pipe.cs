using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "pipe2", SetLastError = true)]
    internal static partial int pipe2(int* fds, int flags);
}
