using Microsoft.Win32.SafeHandles;
using Vhost;

/// <summary>
/// The userfaultfd operations a postcopy back-end needs (userfaultfd(2), ioctl_userfaultfd(2)):
/// open one, the API handshake, and registering / unregistering ranges for missing-page faults.
/// The fd itself is a <see cref="SafeFileHandle"/>; the faults are read and resolved by whoever
/// holds the other copy (the vhost-user front-end), never here.
/// </summary>
internal static unsafe class UserFaultFd
{
    /// <summary>The bit of <c>_UFFDIO_WAKE</c> in the ioctl masks the kernel reports (what a front-end needs to wake our faulting threads).</summary>
    internal const int WakeIoctlBit = 0x02;

    /// <summary>
    /// Opens a userfaultfd (close-on-exec, nonblocking) that also handles faults taken inside the
    /// kernel (a read(2) or an io_uring request into a missing page), so without
    /// <c>UFFD_USER_MODE_ONLY</c>. The syscall allows that to root, to CAP_SYS_PTRACE or when
    /// <c>vm.unprivileged_userfaultfd</c> is 1; otherwise <c>/dev/userfaultfd</c> (Linux 6.1+) is
    /// tried, which its file mode governs.
    /// </summary>
    /// <exception cref="VhostException">Neither way was allowed (the message says what the operator can change).</exception>
    internal static SafeFileHandle Open()
    {
        try
        {
            return Fd.OpenUserFaultFd();
        }
        catch (VhostException syscall) when (syscall.Errno is Errno.EPERM or Errno.ENOSYS)
        {
            SafeFileHandle device;
            try
            {
                device = Fd.Open("/dev/userfaultfd", Interop.O_RDWR | Interop.O_CLOEXEC);
            }
            catch (VhostException e)
            {
                throw new VhostException(syscall.Errno ?? Errno.EPERM, "userfaultfd", $"the kernel refused a userfaultfd that handles kernel-mode faults ({syscall.Message}), and /dev/userfaultfd cannot be opened ({e.Message}): run as root or with CAP_SYS_PTRACE, set vm.unprivileged_userfaultfd=1, or give this user read-write access to /dev/userfaultfd");
            }

            using (device)
            {
                int fd = Fd.IoctlValue(device, Interop.USERFAULTFD_IOC_NEW, (nuint)(Interop.O_CLOEXEC | Interop.O_NONBLOCK), "USERFAULTFD_IOC_NEW");
                return Fd.Own(fd);
            }
        }
    }

    /// <summary>UFFDIO_API with no optional features (what a postcopy back-end needs); returns the ioctls the fd supports.</summary>
    internal static ulong Handshake(SafeFileHandle uffd)
    {
        var api = new Interop.uffdio_api { api = Interop.UFFD_API };
        Ioctl(uffd, Interop.UFFDIO_API, &api, "UFFDIO_API");
        return api.ioctls;
    }

    /// <summary>UFFDIO_REGISTER in MISSING mode over [<paramref name="start"/>, +<paramref name="length"/>); returns the ioctls the range supports.</summary>
    internal static ulong RegisterMissing(SafeFileHandle uffd, nint start, nuint length)
    {
        var register = new Interop.uffdio_register
        {
            range = new Interop.uffdio_range { start = (ulong)start, len = length },
            mode = Interop.UFFDIO_REGISTER_MODE_MISSING,
        };
        Ioctl(uffd, Interop.UFFDIO_REGISTER, &register, $"UFFDIO_REGISTER 0x{start:x}+0x{length:x}");
        return register.ioctls;
    }

    /// <summary>UFFDIO_UNREGISTER: the range faults normally again, and threads waiting in a fault there are woken.</summary>
    internal static void Unregister(SafeFileHandle uffd, nint start, nuint length)
    {
        var range = new Interop.uffdio_range { start = (ulong)start, len = length };
        Ioctl(uffd, Interop.UFFDIO_UNREGISTER, &range, $"UFFDIO_UNREGISTER 0x{start:x}+0x{length:x}");
    }

    /// <summary>UFFDIO_WAKE: what a front-end does once it placed the page (tests play the front-end with it).</summary>
    internal static void Wake(SafeFileHandle uffd, nint start, nuint length)
    {
        var range = new Interop.uffdio_range { start = (ulong)start, len = length };
        Ioctl(uffd, Interop.UFFDIO_WAKE, &range, $"UFFDIO_WAKE 0x{start:x}+0x{length:x}");
    }

    private static void Ioctl(SafeFileHandle uffd, uint request, void* argument, string name)
    {
        using var scope = new Fd.HandleScope(uffd);
        int r;
        Interop.Error errno;
        do
        {
            r = Interop.ioctl(scope.Fd, request, argument);
        }
        while (Interop.Interrupted(r, out errno));

        if (r < 0)
        {
            throw ErrnoChecks.ExceptionFor(errno, name);
        }
    }
}
