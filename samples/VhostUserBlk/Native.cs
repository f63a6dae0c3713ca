using System.Runtime.InteropServices;
using VhostUserBackend.IO;

namespace VhostUserBlk;

/// <summary>
/// The few C library calls the sample makes itself (the library's own interop is internal): the
/// synchronous I/O of the thread fallback, and what <see cref="BlkImage"/> and
/// <see cref="ImageLock"/> need to open, size and lock an image.
/// </summary>
internal static unsafe partial class Native
{
    [LibraryImport("libc", EntryPoint = "preadv64", SetLastError = true)]
    internal static partial nint preadv(int fd, IoVector* iov, int iovcnt, long offset);

    [LibraryImport("libc", EntryPoint = "pwritev64", SetLastError = true)]
    internal static partial nint pwritev(int fd, IoVector* iov, int iovcnt, long offset);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate64", SetLastError = true)]
    internal static partial int fallocate(int fd, int mode, long offset, long length);
}
