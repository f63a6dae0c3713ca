using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>The daemon's answers to the control messages no other daemon test covers.</summary>
public sealed class DaemonControlMessageTests
{
    [Fact]
    public void Status_LogFd_ReadOnlyConfig_ResetDevice_ResetOwner()
    {
        using var rig = new DaemonRig(new CopyDevice(packed: false));
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        Assert.Equal(0x0F, f.GetStatus());
        using (var logEvent = new EventFd())
        {
            f.SetLogFd(logEvent);
        }

        // CopyDevice keeps the default SetConfig: config space is read-only.
        Assert.Throws<VhostUserException>(() => f.SetConfig(0, VhostUserConfigFlags.None, [1, 2]));
        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Complete(0);
        }

        // RESET_DEVICE: rings stopped, status cleared, device reset; a new start resumes service.
        int resets = rig.Device.ResetCount;
        f.ResetDevice();
        Assert.False(rig.Daemon.Vrings[0].IsStarted);
        Assert.Equal(0, f.GetStatus());
        Assert.Equal(resets + 1, rig.Device.ResetCount);
        f.SetFeatures(rig.AckedFeatures);
        rig.StartQueue(0, packed: false, baseValue: 5);
        f.SetVringEnable(0, true);
        rig.Submit(0, DaemonRig.Payload(10));
        rig.Complete(0);

        // RESET_OWNER (deprecated) releases the session; SET_OWNER may then claim it again.
        Assert.Throws<VhostUserException>(f.SetOwner);
        f.ResetOwner();
        Assert.False(rig.Daemon.Vrings[0].IsStarted);
        f.SetOwner();
        Assert.Equal(1, f.GetQueueNum());
    }
}
