using Vhost.Kernel;
using Vhost.Vdpa;

namespace Vhost.Tests.Kernel;

/// <summary>Opening, failing ioctls and disposing kernel frontends leaks no fd.</summary>
[Collection("FdCount")]
public sealed class KernelFdLeakTests
{
    [Fact]
    public void Open_fail_and_dispose_leaks_no_fd()
    {
        for (int i = 0; i < 3; i++)
        {
            Cycle();
        }

        int before = TestFds.Count();
        for (int i = 0; i < 100; i++)
        {
            Cycle();
        }

        Assert.Equal(before, TestFds.Count());
    }

    private static void Cycle()
    {
        using (var net = VhostNet.Open("/dev/null"))
        {
            Assert.Throws<VhostException>(() => net.GetFeatures());
            using var efd = new EventFd();
            Assert.Throws<VhostException>(() => net.SetVringKick(0, efd));
        }

        using (var vdpa = VhostVdpa.Open("/dev/null"))
        {
            Assert.Throws<VhostException>(() => vdpa.GetConfig(0, new byte[8]));
        }

        Assert.Throws<VhostException>(() => VhostVsock.Open("/dev/no-such-vhost-vsock"));
    }
}
