using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    internal const int AF_UNIX = 1;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_SEQPACKET = 5;
    internal const int SOCK_NONBLOCK = 0x800;
    internal const int SOCK_CLOEXEC = 0x80000;
    internal const int SOL_SOCKET = 1;
    internal const int SO_TYPE = 3;
    internal const int SO_PEERCRED = 17;
    internal const int SO_ACCEPTCONN = 30;
    internal const int SO_DOMAIN = 39;
    internal const int SO_RCVTIMEO = 20;
    internal const int SO_SNDTIMEO = 21;
    internal const int SHUT_RD = 0;
    internal const int SHUT_WR = 1;
    internal const int SHUT_RDWR = 2;

    /// <summary>The size of <c>sockaddr_un.sun_path</c>.</summary>
    internal const int UnixPathMax = 108;

    /// <summary><c>struct sockaddr_un</c> (110 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct sockaddr_un
    {
        public ushort sun_family;
        public fixed byte sun_path[UnixPathMax];
    }

    /// <summary><c>struct ucred</c> (12 bytes), the answer to <c>SO_PEERCRED</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ucred
    {
        public int pid;
        public uint uid;
        public uint gid;
    }

    /// <summary><c>struct timeval</c> for <c>SO_RCVTIMEO</c>/<c>SO_SNDTIMEO</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct timeval
    {
        public long tv_sec;
        public long tv_usec;
    }

    [LibraryImport(Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Libc, EntryPoint = "socketpair", SetLastError = true)]
    internal static partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport(Libc, EntryPoint = "bind", SetLastError = true)]
    internal static partial int bind(int fd, sockaddr_un* addr, uint addrlen);

    [LibraryImport(Libc, EntryPoint = "listen", SetLastError = true)]
    internal static partial int listen(int fd, int backlog);

    [LibraryImport(Libc, EntryPoint = "accept4", SetLastError = true)]
    internal static partial int accept4(int fd, void* addr, uint* addrlen, int flags);

    [LibraryImport(Libc, EntryPoint = "connect", SetLastError = true)]
    internal static partial int connect(int fd, sockaddr_un* addr, uint addrlen);

    [LibraryImport(Libc, EntryPoint = "getsockopt", SetLastError = true)]
    internal static partial int getsockopt(int fd, int level, int optname, void* optval, uint* optlen);

    [LibraryImport(Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int setsockopt(int fd, int level, int optname, void* optval, uint optlen);

    [LibraryImport(Libc, EntryPoint = "shutdown", SetLastError = true)]
    internal static partial int shutdown(int fd, int how);
}
