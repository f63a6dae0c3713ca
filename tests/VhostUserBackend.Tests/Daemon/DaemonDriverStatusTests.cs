using Vhost.User;
using Vhost.User.Messages;
using Vhost.Vdpa;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// The driver-status callback: the front-end's SET_STATUS values when STATUS is negotiated (the
/// sequence QEMU sends), a status derived from the session when it is not.
/// </summary>
public sealed class DaemonDriverStatusTests
{
    private const VirtioDeviceStatus Negotiated = VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk;

    [Fact]
    public void WithStatus_TheDeviceSeesWhatTheFrontendSets_AndZeroOnAStopKeepsTheSession()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        Assert.Empty(rig.Device.Statuses); // acking features says nothing when the front-end reports status itself
        f.SetStatus((byte)Negotiated);
        rig.Start(eventIdx: true, packed: false); // ends with SET_STATUS(ACK|DRIVER|DRIVER_OK|FEATURES_OK)
        f.SetStatus((byte)(Negotiated | VirtioDeviceStatus.DriverOk)); // repeated: no second callback
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        // QEMU 7.2's stop: SET_STATUS(0) before GET_VRING_BASE. The ring keeps its state.
        f.SetStatus(0);
        Assert.Equal(1u, f.GetVringBase(0));
        Assert.Equal(0, f.GetStatus());
        Assert.Equal([Negotiated, Negotiated | VirtioDeviceStatus.DriverOk, VirtioDeviceStatus.Reset], rig.Device.Statuses.ToArray());
        Assert.Equal(0, rig.Device.ResetCount);
    }

    [Fact]
    public void WithoutStatus_TheDaemonDerivesIt_FromFeaturesRingsAndReset()
    {
        using var rig = new DaemonRig(new CopyDevice(queues: 2));
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false, withoutProtocolFeatures: VhostUserProtocolFeatures.Status);
        Assert.Equal([Negotiated], rig.Device.Statuses.ToArray());
        rig.Start(eventIdx: true, packed: false);
        Assert.Equal([Negotiated, Negotiated | VirtioDeviceStatus.DriverOk], rig.Device.Statuses.ToArray());

        // DRIVER_OK lasts while any ring runs.
        f.GetVringBase(0);
        Assert.Equal(2, rig.Device.Statuses.Count);
        f.GetVringBase(1);
        Assert.Equal(Negotiated, rig.Device.Statuses.Last());

        rig.StartQueue(0, packed: false, baseValue: 0);
        Assert.Equal(Negotiated | VirtioDeviceStatus.DriverOk, rig.Device.Statuses.Last());
        f.ResetDevice();
        Assert.Equal(
            [Negotiated, Negotiated | VirtioDeviceStatus.DriverOk, Negotiated, Negotiated | VirtioDeviceStatus.DriverOk, VirtioDeviceStatus.Reset],
            rig.Device.Statuses.ToArray());
    }

    [Fact]
    public void ADisconnect_ReportsReset()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false, withoutProtocolFeatures: VhostUserProtocolFeatures.Status);
        rig.Start(eventIdx: true, packed: false);
        f.Dispose();
        Assert.True(SpinWait.SpinUntil(() => rig.Device.Statuses.LastOrDefault() == VirtioDeviceStatus.Reset && rig.Device.ResetCount > 0, 5000), string.Join(", ", rig.Device.Statuses));
    }
}
