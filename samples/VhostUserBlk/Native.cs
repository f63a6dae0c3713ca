using System.Runtime.InteropServices;
using VhostSamples;
using VhostUserBackend.Virtio;

namespace VhostUserBlk;

/// <summary>
/// The few C library calls the sample makes itself (the library's own interop is internal): the
/// synchronous I/O of the thread fallback, and what <see cref="BlkImage"/> and
/// <see cref="ImageLock"/> need to open, size and lock an image.
/// </summary>
internal static unsafe partial class Native
{
    [LibraryImport("libc", EntryPoint = "preadv64", SetLastError = true)]
    internal static partial nint preadv(int fd, Iovec* iov, int iovcnt, long offset);

    [LibraryImport("libc", EntryPoint = "pwritev64", SetLastError = true)]
    internal static partial nint pwritev(int fd, Iovec* iov, int iovcnt, long offset);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate64", SetLastError = true)]
    internal static partial int fallocate(int fd, int mode, long offset, long length);

    /// <summary><c>f_type</c> of tmpfs and shmem (memfd): <c>TMPFS_MAGIC</c>.</summary>
    internal const long TmpfsMagic = 0x01021994;

    /// <summary><c>fstatfs</c>: <paramref name="buffer"/> receives a <c>struct statfs</c> (120 bytes on 64-bit Linux; <c>f_type</c> is its first word).</summary>
    [LibraryImport("libc", EntryPoint = "fstatfs64", SetLastError = true)]
    internal static partial int fstatfs(int fd, byte* buffer);

    /// <summary>Whether <paramref name="handle"/>'s file lives in memory (tmpfs, or a memfd), where no read or write waits for a device.</summary>
    internal static bool IsInMemory(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        byte* statfs = stackalloc byte[256];
        using var scope = new HandleScope(handle);
        return fstatfs(scope.Fd, statfs) == 0 && *(long*)statfs == TmpfsMagic;
    }
}

/// <summary>The record-lock, size and memfd calls of the image (see <see cref="Native"/>).</summary>
internal static unsafe partial class Native
{
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int F_OFD_GETLK = 36;
    internal const int F_OFD_SETLK = 37;
    internal const short F_RDLCK = 0;
    internal const short F_WRLCK = 1;
    internal const short F_UNLCK = 2;
    internal const int SEEK_END = 2;
    internal const uint MFD_CLOEXEC = 1;

    /// <summary><c>O_DIRECT</c> (settable with F_SETFL): 0x4000 on x86_64, 0x10000 on aarch64.</summary>
    internal static int O_DIRECT => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x4000 : 0x10000;

    /// <summary>The errno of the last call.</summary>
    internal static int LastErrno => Marshal.GetLastPInvokeError();

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, flock* arg);

    [LibraryImport("libc", EntryPoint = "lseek64", SetLastError = true)]
    internal static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int memfd_create(string name, uint flags);

    /// <summary>Throws the last errno as a <see cref="Vhost.VhostException"/>.</summary>
    internal static void ThrowLast(string operation, string? detail = null) => throw new Vhost.VhostException(LastErrno, operation, detail);

    /// <summary><c>struct flock</c> (LP64). For open-file-description locks <c>l_pid</c> must be 0.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct flock
    {
        public short l_type;
        public short l_whence;
        public long l_start;
        public long l_len;
        public int l_pid;
    }
}
