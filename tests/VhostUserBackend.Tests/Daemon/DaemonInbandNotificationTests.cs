using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>INBAND_NOTIFICATIONS: VRING_KICK from the front-end, VRING_CALL / VRING_ERR from the daemon.</summary>
public sealed class DaemonInbandNotificationTests
{
    private const VhostUserProtocolFeatures Inband = VhostUserProtocolFeatures.InbandNotifications | VhostUserProtocolFeatures.BackendRequest;

    [Fact]
    public void VringKick_ProcessesTheRing_AsAnEventFdKickDoes()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, Inband);
        Assert.Equal(Inband, f.AckedProtocolFeatures & Inband);
        rig.Start(eventIdx: false, packed: false);
        RigQueue q = rig.Queues[0];

        // With the kick eventfd in place, an in-band kick works too.
        rig.Submit(0, DaemonRig.Payload(1), kick: false);
        f.VringKick(0);
        Assert.True(UnixSocket.WaitReady(q.Call, Interop.POLLIN, 5000), "VRING_KICK did not get the ring processed");
        rig.Complete(0);

        // Restart the ring without a kick fd: the front-end kicks in-band only.
        uint position = f.GetVringBase(0);
        f.SetVringBase(0, position);
        f.SetVringKick(0, null);
        f.SetVringEnable(0, true);
        for (int i = 0; i < 20; i++)
        {
            rig.Submit(0, DaemonRig.Payload(10 + i), kick: false);
            f.VringKick(0);
            rig.Complete(0);
        }

        Assert.Equal(21, rig.Device.Completed);
        Assert.Throws<VhostUserPeerRefusedException>(() => f.VringKick(5));
        Assert.Equal(1, f.GetQueueNum());
    }

    [Fact]
    public void NoCallFd_WithInband_DaemonSendsVringCallOnTheBackendChannel_AndVringErrForErrors()
    {
        var device = new CopyDevice(queues: 2, groups: [0b11]) { ThrowOnQueue = 1 };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, Inband);
        var handler = new RecordingFrontendHandler();
        f.SetBackendRequestFd(handler);
        rig.Start(eventIdx: false, packed: false);
        f.SetVringCall(0, null);
        f.SetVringError(1, null);

        for (int i = 0; i < 10; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            Assert.True(handler.Calls.TryTake(out uint index, 5000, TestContext.Current.CancellationToken), "no VRING_CALL arrived");
            Assert.Equal(0u, index);
            rig.Complete(0);
        }

        Assert.False(UnixSocket.WaitReady(rig.Queues[0].Call, Interop.POLLIN, 0), "the old call eventfd fired");

        // Queue 1's device fails: with no error fd the error goes in-band.
        rig.Submit(1, DaemonRig.Payload(99));
        Assert.True(handler.Errors.TryTake(out uint failed, 5000, TestContext.Current.CancellationToken), "no VRING_ERR arrived");
        Assert.Equal(1u, failed);

        // A call fd again: the eventfd is used, nothing in-band.
        f.SetVringCall(0, rig.Queues[0].Call);
        rig.Submit(0, DaemonRig.Payload(50));
        Assert.True(UnixSocket.WaitReady(rig.Queues[0].Call, Interop.POLLIN, 5000), "the call eventfd did not fire");
        rig.Complete(0);
        Assert.Empty(handler.Calls);
    }

    [Fact]
    public void NoCallFd_WithoutInband_NothingIsSent_AndTheRingStillWorks()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.BackendRequest);
        var handler = new RecordingFrontendHandler();
        f.SetBackendRequestFd(handler);
        rig.Start(eventIdx: false, packed: false);
        f.SetVringCall(0, null);
        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Complete(0);
        }

        Assert.Empty(handler.Calls);
        Assert.Throws<InvalidOperationException>(() => f.VringKick(0));
    }

    /// <summary>
    /// A front-end that does not serve its back-end channel while it waits for GET_VRING_BASE (QEMU
    /// handles the channel on the thread that sends the request). The worker sent VRING_CALL with
    /// REPLY_ACK and waited for the ack, so Pause() waited for the worker and GET_VRING_BASE for
    /// the ack timeout (5 s): the worker must never wait for the front-end.
    /// </summary>
    [Fact]
    public void InbandVringCall_WithReplyAck_DoesNotBlockTheWorker_WhileTheFrontendWaitsForGetVringBase()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, Inband);
        Assert.Equal(VhostUserProtocolFeatures.ReplyAck, f.AckedProtocolFeatures & VhostUserProtocolFeatures.ReplyAck);
        using var gate = new ManualResetEventSlim(false);
        var handler = new StallingFrontendHandler(gate);
        f.SetBackendRequestFd(handler);
        rig.Start(eventIdx: false, packed: false);
        f.SetVringCall(0, null);
        try
        {
            rig.Submit(0, DaemonRig.Payload(1));
            Assert.True(handler.Arrived.Wait(5000, TestContext.Current.CancellationToken), "no VRING_CALL arrived");

            // The front-end's channel thread is stuck (it will not reply) while it asks GET_VRING_BASE.
            long start = Environment.TickCount64;
            uint position = f.GetVringBase(0);
            long elapsed = Environment.TickCount64 - start;
            Assert.Equal(1u, position);
            Assert.True(elapsed < 1000, $"GET_VRING_BASE took {elapsed} ms: the worker waited for the front-end's reply to VRING_CALL");
        }
        finally
        {
            gate.Set();
        }

        Assert.Equal(1, f.GetQueueNum());
    }

    /// <summary>Blocks in VRING_CALL until released (a front-end busy elsewhere, not reading its channel).</summary>
    private sealed class StallingFrontendHandler(ManualResetEventSlim gate) : IVhostUserFrontendRequestHandler
    {
        public ManualResetEventSlim Arrived { get; } = new(false);

        public void VringCall(int queueIndex)
        {
            Arrived.Set();
            gate.Wait();
        }
    }
}
