using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend;
using Xunit;

namespace VhostUserDevice.Tests;

public sealed class DeviceTests
{
    [Fact]
    public void Daemon_NegotiatesWithAFrontend()
    {
        string socketPath = Path.Combine(Path.GetTempPath(), $"VhostUserDevice-{Guid.NewGuid():N}.sock");
        var device = new Device();
        using var daemon = new VhostUserDaemon(device);
        daemon.Start(socketPath);

        // What QEMU does first: features, protocol features, queue count, owner.
        using (VhostUserFrontend frontend = VhostUserFrontend.Connect(socketPath, TimeSpan.FromSeconds(5)))
        {
            ulong features = frontend.GetFeatures();
            Assert.Equal(device.Features, features & device.Features);
            Assert.NotEqual(0UL, features & (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
            VhostUserProtocolFeatures protocol = frontend.GetProtocolFeatures();
            frontend.SetProtocolFeatures(protocol & (VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck));
            Assert.Equal(device.QueueCount, frontend.GetQueueNum());
            frontend.SetOwner();
            frontend.SetFeatures(features);
        }

        daemon.Stop();
        Assert.Equal(1, daemon.ConnectionCount);
    }
}
