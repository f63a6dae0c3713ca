using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

/// <summary>Tests that reuse or count fd numbers, so they run alone.</summary>
[Collection("FdCount")]
public sealed class FdLeakTests
{
    [Fact]
    public void A_closed_fd_number_is_EBADF()
    {
        // Runs alone (FdCount collection), so nothing reuses the number between close and read.
        SafeFileHandle memfd = Fd.CreateMemFd("closed", 8);
        int number = (int)memfd.DangerousGetHandle();
        memfd.Dispose();
        using var stale = new SafeFileHandle(number, ownsHandle: false);

        var e = Assert.Throws<VhostException>(() => Fd.Read(stale, new byte[8]));
        Assert.Equal(Errno.EBADF, e.Errno);
        Assert.Contains("EBADF", e.Message);
    }

    [Fact]
    public void A_failed_memfd_create_throws_EINVAL_and_opens_nothing()
    {
        int before = OpenFds.Count();
        // memfd names are limited to 249 bytes.
        var e = Assert.Throws<VhostException>(() => Fd.CreateMemFd(new string('m', 300), 4096));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal("memfd_create", e.Operation);
        Assert.Equal(before, OpenFds.Count());
    }
}
