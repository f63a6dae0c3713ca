using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>The <c>userfaultfd</c> system call number on x86_64.</summary>
    internal const long SYS_userfaultfd_x64 = 323;

    /// <summary>The <c>userfaultfd</c> system call number on aarch64 (generic table).</summary>
    internal const long SYS_userfaultfd_arm64 = 282;

    /// <summary>The API version <c>UFFDIO_API</c> asks for.</summary>
    internal const int UFFD_API = 0xAA;

    /// <summary><c>_IOWR(0xAA, 0x3F, struct uffdio_api)</c>: the handshake every userfaultfd needs before anything else.</summary>
    internal const uint UFFDIO_API = 0xC018AA3F;

    /// <summary><c>_IOWR(0xAA, 0x00, struct uffdio_register)</c>.</summary>
    internal const uint UFFDIO_REGISTER = 0xC020AA00;

    /// <summary><c>_IOR(0xAA, 0x01, struct uffdio_range)</c>.</summary>
    internal const uint UFFDIO_UNREGISTER = 0x8010AA01;

    /// <summary><c>_IOR(0xAA, 0x02, struct uffdio_range)</c>: wakes the threads waiting in a fault in the range (the front-end's side).</summary>
    internal const uint UFFDIO_WAKE = 0x8010AA02;

    /// <summary>The <c>event</c> of a <c>struct uffd_msg</c> that reports a page fault.</summary>
    internal const int UFFD_EVENT_PAGEFAULT = 0x12;

    /// <summary><c>_IO(0xAA, 0x00)</c> on <c>/dev/userfaultfd</c> (Linux 6.1+): a new userfaultfd, for processes the syscall refuses.</summary>
    internal const uint USERFAULTFD_IOC_NEW = 0xAA00;

    /// <summary>Register for faults on pages that are not present (postcopy's mode).</summary>
    internal const int UFFDIO_REGISTER_MODE_MISSING = 1;

    /// <summary><c>syscall(2)</c> with one integer argument (glibc has no userfaultfd wrapper).</summary>
    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall(long number, long arg0);

    /// <summary><c>struct uffdio_api</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct uffdio_api
    {
        public ulong api;
        public ulong features;
        public ulong ioctls;
    }

    /// <summary><c>struct uffdio_range</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct uffdio_range
    {
        public ulong start;
        public ulong len;
    }

    /// <summary><c>struct uffdio_register</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct uffdio_register
    {
        public uffdio_range range;
        public ulong mode;
        public ulong ioctls;
    }
}
