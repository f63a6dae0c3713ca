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
        Assert.ThrowsAny<VhostUserException>(() => f.SetConfig(0, VhostUserConfigFlags.None, [1, 2]));
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

        // A repeated SET_OWNER is accepted (QEMU sends one per vhost device of a connection).
        // RESET_OWNER (deprecated) disables the rings and keeps the session (the spec's
        // recommendation): the ring stays started and set up, and serves again once enabled.
        f.SetOwner();
        f.ResetOwner();
        Assert.True(rig.Daemon.Vrings[0].IsStarted);
        Assert.False(rig.Daemon.Vrings[0].IsEnabled);
        f.SetVringEnable(0, true);
        rig.Submit(0, DaemonRig.Payload(11));
        rig.Complete(0);
        Assert.Equal(1, f.GetQueueNum());
    }
}
