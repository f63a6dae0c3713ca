using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int F_OFD_GETLK = 36;
    internal const int F_OFD_SETLK = 37;
    internal const int F_ADD_SEALS = 1033;

    internal const short F_RDLCK = 0;
    internal const short F_WRLCK = 1;
    internal const short F_UNLCK = 2;
    internal const int F_GET_SEALS = 1034;

    internal const int FD_CLOEXEC = 1;
    internal const int O_NONBLOCK = 0x800;

    /// <summary><c>O_DIRECT</c> on x86_64 (settable with F_SETFL).</summary>
    internal const int O_DIRECT_x64 = 0x4000;

    /// <summary><c>O_DIRECT</c> on aarch64 (settable with F_SETFL).</summary>
    internal const int O_DIRECT_arm64 = 0x10000;

    internal const int F_SEAL_SEAL = 0x1;
    internal const int F_SEAL_SHRINK = 0x2;
    internal const int F_SEAL_GROW = 0x4;
    internal const int F_SEAL_WRITE = 0x8;
    internal const int F_SEAL_FUTURE_WRITE = 0x10;

    /// <summary><c>fcntl(fd, cmd, int arg)</c>: the commands that take an int or nothing.</summary>
    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);

    /// <summary><c>fcntl(fd, cmd, struct flock *)</c>: the record-lock commands (F_OFD_GETLK, F_OFD_SETLK).</summary>
    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static unsafe partial int fcntl(int fd, int cmd, flock* arg);

    /// <summary><c>struct flock</c> (LP64): a byte-range lock. For open-file-description locks <c>l_pid</c> must be 0.</summary>
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
