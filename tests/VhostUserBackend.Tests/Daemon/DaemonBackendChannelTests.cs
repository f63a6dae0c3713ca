using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>The back-end channel (SET_BACKEND_REQ_FD) handed to the device.</summary>
public sealed class DaemonBackendChannelTests
{
    [Fact]
    public void DeviceSendsConfigChange_FrontendHandlerSeesIt_ChannelReleasedAtDisconnect()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.BackendRequest);
        Assert.Null(rig.Device.Channel);
        var handler = new RecordingFrontendHandler();
        f.SetBackendRequestFd(handler);
        VhostUserBackendChannel channel = Assert.IsType<VhostUserBackendChannel>(rig.Device.Channel);
        Assert.True((channel.ProtocolFeatures & VhostUserProtocolFeatures.Config) != 0);

        // REPLY_ACK is negotiated: each send returns once the front-end's handler ran.
        channel.SendConfigChange();
        Assert.Equal(1, handler.ConfigChanges);
        channel.SendConfigChange();
        channel.SendConfigChange();
        Assert.Equal(3, handler.ConfigChanges);

        // The device may send from its own threads while the control thread serves the front-end.
        rig.Start(eventIdx: false, packed: false);
        Parallel.For(0, 8, _ => channel.SendConfigChange());
        Assert.Equal(11, handler.ConfigChanges);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        long connections = rig.Daemon.ConnectionCount;
        rig.DisconnectFrontend();
        DaemonRig.WaitDisconnected(rig.Daemon, connections);

        // The daemon owned the channel and closed it with the connection.
        Assert.Throws<ObjectDisposedException>(channel.SendConfigChange);
        Assert.Equal(11, handler.ConfigChanges);
    }
}
