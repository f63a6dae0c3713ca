using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    internal const int EPOLL_CLOEXEC = 0x80000;
    internal const int EPOLL_CTL_ADD = 1;
    internal const int EPOLL_CTL_DEL = 2;
    internal const int EPOLL_CTL_MOD = 3;

    internal const uint EPOLLIN = 0x001;
    internal const uint EPOLLPRI = 0x002;
    internal const uint EPOLLOUT = 0x004;
    internal const uint EPOLLERR = 0x008;
    internal const uint EPOLLHUP = 0x010;
    internal const uint EPOLLRDHUP = 0x2000;
    internal const uint EPOLLET = 0x80000000;

    /// <summary>
    /// <c>struct epoll_event</c> as x86_64 lays it out: packed, 12 bytes (the kernel declares it
    /// <c>__attribute__((packed))</c> only on x86_64). <see cref="EpollEventArm64"/> is the
    /// 16-byte layout of every other 64-bit architecture; <see cref="EpollEventSize"/> picks one.
    /// </summary>
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    internal struct epoll_event
    {
        public uint events;
        public ulong data;
    }

    /// <summary><c>struct epoll_event</c> on aarch64 and other non-x86 64-bit targets (16 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct EpollEventArm64
    {
        public uint events;
        public ulong data;
    }

    /// <summary>The size of one <c>epoll_event</c> on this architecture.</summary>
    internal static int EpollEventSize => IsX64 ? sizeof(epoll_event) : sizeof(EpollEventArm64);

    [LibraryImport(Libc, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int epoll_create1(int flags);

    /// <summary><c>epoll_ctl</c>; <paramref name="ev"/> points at an event of this architecture's layout.</summary>
    [LibraryImport(Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static partial int epoll_ctl(int epfd, int op, int fd, void* ev);

    /// <summary><c>epoll_wait</c>; <paramref name="events"/> holds <paramref name="maxevents"/> events of this architecture's layout.</summary>
    [LibraryImport(Libc, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static partial int epoll_wait(int epfd, void* events, int maxevents, int timeout);
}
