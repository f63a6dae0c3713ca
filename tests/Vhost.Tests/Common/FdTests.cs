using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

/// <summary>The checked syscall wrappers: errno reaches the exception with the call's name.</summary>
public sealed unsafe class FdTests
{
    /// <summary>An fd number no process can have open (above any RLIMIT_NOFILE).</summary>
    private static SafeFileHandle NeverOpen() => new((nint)int.MaxValue, ownsHandle: false);

    [Fact]
    public void A_bad_fd_is_EBADF_with_the_call_and_errno_in_the_exception()
    {
        using SafeFileHandle bad = NeverOpen();

        var e = Assert.Throws<VhostException>(() => Fd.Read(bad, new byte[8]));
        Assert.Equal(Errno.EBADF, e.Errno);
        Assert.Equal("read", e.Operation);
        Assert.Contains("EBADF", e.Message);
        Assert.Contains("read", e.Message);
        Assert.Equal((int)Errno.EBADF, e.HResult);

        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.Write(bad, new byte[8])).Errno);
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.PRead(bad, new byte[8], 0)).Errno);
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.PWrite(bad, new byte[8], 0)).Errno);
        var stat = Assert.Throws<VhostException>(() => Fd.Stat(bad));
        Assert.Equal((Errno.EBADF, "fstat"), (stat.Errno!.Value, stat.Operation));
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.StatFs(bad)).Errno);
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.Duplicate(bad)).Errno);
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.Truncate(bad, 0)).Errno);
        Assert.Equal(Errno.EBADF, Assert.Throws<VhostException>(() => Fd.IsCloseOnExec(bad)).Errno);

        Assert.Equal(-1, Fd.TryRead(bad, new byte[8], out global::Interop.Error errno));
        Assert.Equal(Errno.EBADF, (Errno)errno);
        Assert.Equal(-1, ScmRights.TrySend(bad, new byte[8], [], out errno));
        Assert.Equal(Errno.EBADF, (Errno)errno);
    }

    [Fact]
    public void A_disposed_handle_is_refused_before_its_stale_number_reaches_the_kernel()
    {
        SafeFileHandle fd = Fd.CreateMemFd("disposed", 8);
        fd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Fd.Read(fd, new byte[8]));
        Assert.Throws<ObjectDisposedException>(() => Fd.Stat(fd));
    }

    [Fact]
    public void Ioctl_on_a_non_vhost_fd_is_ENOTTY()
    {
        using var eventFd = new EventFd();
        ulong* features = stackalloc ulong[1];

        var e = Assert.Throws<VhostException>(() => Fd.Ioctl(eventFd, VhostIoctls.VHOST_GET_FEATURES, features, "VHOST_GET_FEATURES"));
        Assert.Equal(Errno.ENOTTY, e.Errno);
        Assert.Equal("ioctl(VHOST_GET_FEATURES)", e.Operation);
        Assert.Contains("ENOTTY", e.Message);

        var owner = Assert.Throws<VhostException>(() => Fd.IoctlValue(eventFd, VhostIoctls.VHOST_SET_OWNER, 0, "VHOST_SET_OWNER"));
        Assert.Equal(Errno.ENOTTY, owner.Errno);
        Assert.Equal("ioctl(VHOST_SET_OWNER)", owner.Operation);
    }

    [Fact]
    public void Ioctl_returns_the_result_on_success()
    {
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            Fd.Write(a, new byte[5]);
            int pending = 0;
            Assert.Equal(0, Fd.Ioctl(b, (nuint)global::Interop.FIONREAD, &pending, "FIONREAD"));
            Assert.Equal(5, pending);
        }
    }

    [Fact]
    public void Duplicate_is_close_on_exec_and_refers_to_the_same_file()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("dup", 4096);
        using SafeFileHandle dup = Fd.Duplicate(memfd);
        Assert.True(Fd.IsCloseOnExec(dup));
        Assert.Equal(Fd.Stat(memfd).Inode, Fd.Stat(dup).Inode);
        Assert.Equal(4096L, Fd.Stat(dup).Size);
        Assert.Equal(global::Interop.S_IFREG, Fd.Stat(dup).FileType);
    }

    [Fact]
    public void NonBlocking_flag_toggles()
    {
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            Assert.False(Fd.IsNonBlocking(a));
            Fd.SetNonBlocking(a, true);
            Assert.True(Fd.IsNonBlocking(a));
            Assert.Equal(-1, Fd.TryRead(a, new byte[1], out global::Interop.Error errno));
            Assert.Equal(Errno.EAGAIN, (Errno)errno);
            Assert.Equal(Errno.EAGAIN, Assert.Throws<VhostException>(() => Fd.Read(a, new byte[1])).Errno);
            Fd.SetNonBlocking(a, false);
            Assert.False(Fd.IsNonBlocking(a));
        }
    }

    [Fact]
    public void Pwrite_and_pread_round_trip_at_an_offset()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("prw", 8192);
        byte[] data = [1, 2, 3, 4, 5];
        Assert.Equal(5, Fd.PWrite(memfd, data, 4000));
        var back = new byte[5];
        Assert.Equal(5, Fd.PRead(memfd, back, 4000));
        Assert.Equal(data, back);
        Assert.Equal(0, Fd.PRead(memfd, back, 8192)); // end of file
    }

    [Fact]
    public void Memfd_seals_are_enforced()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("sealed", 4096);
        Assert.Equal(0, Fd.GetSeals(memfd));
        Fd.AddSeals(memfd, global::Interop.F_SEAL_GROW | global::Interop.F_SEAL_SHRINK);
        Assert.Equal(global::Interop.F_SEAL_GROW | global::Interop.F_SEAL_SHRINK, Fd.GetSeals(memfd));
        var e = Assert.Throws<VhostException>(() => Fd.Truncate(memfd, 8192));
        Assert.Equal(Errno.EPERM, e.Errno);
        Assert.Equal("ftruncate", e.Operation);
    }

    [Fact]
    public void Seals_on_a_non_memfd_are_EINVAL()
    {
        using var eventFd = new EventFd();
        Assert.Equal(Errno.EINVAL, Assert.Throws<VhostException>(() => Fd.GetSeals(eventFd)).Errno);
    }

    [Fact]
    public void Negative_memfd_size_is_an_argument_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Fd.CreateMemFd("negative", -1));
    }
}
