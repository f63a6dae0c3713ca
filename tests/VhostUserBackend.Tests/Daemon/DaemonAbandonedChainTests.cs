using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// Chains the daemon abandoned (the device did not finish them within
/// <see cref="VhostUserDaemonOptions.InFlightTimeout"/> when the ring stopped) are still in the
/// device, whose I/O may still land. A block device that wrote them late over a request resubmitted
/// from the inflight region, or over a newer write to the same block, would lose data; a late write
/// into guest memory unmapped at the end of the connection would crash the daemon. So the ring takes
/// no new chain until they completed, and their memory stays mapped until then.
/// </summary>
public sealed class DaemonAbandonedChainTests
{
    [Fact]
    public void ARestartedRing_TakesNoNewChain_UntilTheDeviceCompletedTheAbandonedOnes()
    {
        using var s = new InflightSetup(TimeSpan.FromSeconds(1));
        (CopyDevice device, VhostUserDaemon daemon, DaemonRig rig) = (s.Device, s.Daemon, s.Rig);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        // The device holds the next request past the bound: GET_VRING_BASE abandons it (its
        // inflight mark stays), and the front-end restarts the ring at that base (stop/cont).
        s.AbandonOneAndRestart(expectedBase: 2);
        rig.Submit(0, DaemonRig.Payload(3));

        // Neither the resubmission nor the new request may start while the old one is in the device.
        Thread.Sleep(300);
        Assert.True(daemon.Vrings[0].IsStarted);
        Assert.Equal(1, Volatile.Read(ref device.Pending));
        Assert.Equal(1, daemon.Vrings[0].AbandonedInDevice);

        // The old one lands (dropped: its ring stopped); then the ring runs: the resubmitted
        // request and the new one complete, each once, with their data.
        device.CompletionGate.Set();
        rig.Complete(0);
        rig.Complete(0);
        Assert.Equal(1, daemon.Vrings[0].DiscardedCompletions);
        Assert.Equal(0, daemon.Vrings[0].AbandonedInDevice);
        Assert.Equal(4, Interlocked.Read(ref device.Completed));
        Assert.False(rig.Queues[0].Driver.TryGetUsed(out ushort extra, out _), $"chain {extra} completed twice");
    }

    [Fact]
    public void AnAbandonedChain_CompletedAfterTheConnectionEnded_StillWritesIntoMappedMemory()
    {
        var device = new CopyDevice(queues: 1) { Async = true };
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromMilliseconds(100) });
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        device.CompletionGate.Reset();
        byte[] payload = DaemonRig.Payload(7);
        rig.Submit(0, payload);
        Poll.Until(() => Volatile.Read(ref device.Pending) == 1);

        // The front-end goes away with the request in the device; the daemon abandons it.
        rig.DisconnectFrontend();
        DaemonRig.WaitDisconnected(daemon, 1);
        Assert.Equal(1, daemon.Vrings[0].AbandonedInDevice);

        // The device's late write goes into the daemon's mapping of the guest RAM, still there.
        device.CompletionGate.Set();
        Poll.Until(() => Volatile.Read(ref device.Pending) == 0);
        Poll.Until(() => daemon.Vrings[0].AbandonedInDevice == 0);
        Assert.Equal(1, daemon.Vrings[0].DiscardedCompletions);
        ulong output = rig.Queues[0].BufferBase + RigQueue.SlotBytes;
        Assert.Equal(payload, rig.Ram.GetSpan(output, payload.Length).ToArray());
    }

    /// <summary>A device that lost an abandoned chain (it never completes it) holds the restarted ring up for at most the in-flight timeout, then the ring runs again.</summary>
    [Fact]
    public void AChainTheDeviceNeverCompletes_HoldsTheRestartedRingUpForTheTimeoutOnly()
    {
        using var s = new InflightSetup(TimeSpan.FromMilliseconds(300));
        (CopyDevice device, VhostUserDaemon daemon, DaemonRig rig) = (s.Device, s.Daemon, s.Rig);
        s.AbandonOneAndRestart(expectedBase: 1);
        long started = Environment.TickCount64;
        Assert.True(daemon.Vrings[0].IsFenced);

        // The resubmission waits for the fence, which lifts at the deadline without a kick.
        Poll.Until(() => Volatile.Read(ref device.Pending) == 2);
        long waited = Environment.TickCount64 - started;
        Assert.True(waited >= 250, $"the ring took the resubmitted request after {waited} ms, before the 300 ms timeout");
        Assert.False(daemon.Vrings[0].IsFenced);
        Assert.Equal(1, daemon.Vrings[0].AbandonedInDevice);

        // Both run now (what the fence prevents while it holds): the resubmission completes once,
        // the old one is dropped.
        device.CompletionGate.Set();
        rig.Complete(0);
        Poll.Until(() => daemon.Vrings[0].AbandonedInDevice == 0);
        Assert.Equal(1, daemon.Vrings[0].DiscardedCompletions);
        Assert.False(rig.Queues[0].Driver.TryGetUsed(out ushort extra, out _), $"chain {extra} completed twice");
    }

    /// <summary>An asynchronous copy device behind a daemon with the given in-flight timeout, and a front-end with an inflight region.</summary>
    private sealed class InflightSetup : IDisposable
    {
        private readonly SafeFileHandle _region;

        public InflightSetup(TimeSpan inFlightTimeout)
        {
            Daemon = new VhostUserDaemon(Device, new VhostUserDaemonOptions { InFlightTimeout = inFlightTimeout });
            string path = DaemonRig.NewSocketPath();
            Daemon.Start(path);
            Rig = new DaemonRig(Device, Daemon, path);
            Frontend = Rig.Connect(eventIdx: false, packed: false);
            _region = Frontend.GetInflightFd(1, 64, out VhostUserInflight inflight);
            Rig.Start(eventIdx: false, packed: false, inflight: (inflight, _region));
        }

        public CopyDevice Device { get; } = new(queues: 1) { Async = true };

        public VhostUserDaemon Daemon { get; }

        public DaemonRig Rig { get; }

        public VhostUserFrontend Frontend { get; }

        /// <summary>The device holds the next request past the timeout: GET_VRING_BASE abandons it, and the ring is restarted at the base (stop/cont).</summary>
        public void AbandonOneAndRestart(uint expectedBase)
        {
            Device.CompletionGate.Reset();
            Rig.Submit(0, DaemonRig.Payload(2));
            Poll.Until(() => Volatile.Read(ref Device.Pending) == 1);
            Assert.Equal(expectedBase, Frontend.GetVringBase(0));
            Rig.StartQueue(0, packed: false, baseValue: expectedBase);
            Frontend.SetVringEnable(0, true);
        }

        public void Dispose()
        {
            Device.CompletionGate.Set();
            _region.Dispose();
            Rig.Dispose();
            Daemon.Dispose();
        }
    }
}
