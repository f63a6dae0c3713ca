using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    internal const int CLOCK_MONOTONIC = 1;
    internal const int TFD_CLOEXEC = 0x80000;
    internal const int TFD_NONBLOCK = 0x800;

    /// <summary><c>struct timespec</c> (16 bytes on 64-bit).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }

    /// <summary><c>struct itimerspec</c> (32 bytes on 64-bit).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct itimerspec
    {
        public timespec it_interval;
        public timespec it_value;
    }

    [LibraryImport(Libc, EntryPoint = "timerfd_create", SetLastError = true)]
    internal static partial int timerfd_create(int clockid, int flags);

    [LibraryImport(Libc, EntryPoint = "timerfd_settime", SetLastError = true)]
    internal static partial int timerfd_settime(int fd, int flags, itimerspec* new_value, itimerspec* old_value);
}
