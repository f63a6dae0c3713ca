using System.Diagnostics;
using Vhost;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// GET_VRING_BASE_INFLIGHT (bit 20) and GET_VRING_BASE_SKIP_DRAIN (message 45, bit 23): a source
/// daemon stops a ring with its requests' host I/O still pending, suspends them into the inflight
/// region, and a destination daemon given that region resubmits each of them exactly once.
/// </summary>
public sealed class DaemonInflightMigrationTests
{
    private const VhostUserProtocolFeatures Bit20 = VhostUserProtocolFeatures.GetVringBaseInflight;
    private const VhostUserProtocolFeatures Bit23 = VhostUserProtocolFeatures.GetVringBaseSkipDrain;

    [Fact]
    public void The_daemon_offers_skip_drain_only_with_a_device_that_suspends_and_the_inflight_region()
    {
        using (var plain = new DaemonRig(new CopyDevice()))
        {
            plain.Connect(eventIdx: false, packed: false);
            Assert.Equal(VhostUserProtocolFeatures.None, plain.Frontend!.GetProtocolFeatures() & (Bit20 | Bit23));
        }

        using (var suspending = new DaemonRig(new CopyDevice { ExtraProtocolFeatures = Bit20 }))
        {
            suspending.Connect(eventIdx: false, packed: false);
            Assert.Equal(Bit20 | Bit23, suspending.Frontend!.GetProtocolFeatures() & (Bit20 | Bit23));
        }

        // Bit 20 without INFLIGHT_SHMFD is forbidden by the spec: the daemon withdraws both bits.
        var noRegion = new CopyDevice { ExtraProtocolFeatures = Bit20 };
        noRegion.BaseProtocolFeatures &= ~VhostUserProtocolFeatures.InflightShmFd;
        using (var rig = new DaemonRig(noRegion))
        {
            rig.Connect(eventIdx: false, packed: false);
            Assert.Equal(VhostUserProtocolFeatures.None, rig.Frontend!.GetProtocolFeatures() & (Bit20 | Bit23));
        }
    }

    [Fact]
    public void Our_frontend_refuses_skip_drain_when_not_negotiated_and_the_forbidden_feature_sets()
    {
        using var rig = new DaemonRig(new CopyDevice { ExtraProtocolFeatures = Bit20 });
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        Assert.Throws<InvalidOperationException>(() => f.GetVringBaseSkipDrain(0));
        VhostUserProtocolFeatures acked = rig.ProtocolFeatures;
        Assert.Throws<ArgumentException>(() => f.SetProtocolFeatures(acked | Bit23));
        Assert.Throws<ArgumentException>(() => f.SetProtocolFeatures((acked | Bit20) & ~VhostUserProtocolFeatures.InflightShmFd));
    }

    [Fact]
    public void Skip_drain_stops_at_once_and_the_destination_resubmits_every_suspended_request_exactly_once()
    {
        var source = new CopyDevice { Async = true, CanSuspend = true, ExtraProtocolFeatures = Bit20 };
        var daemon1 = new VhostUserDaemon(source, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromSeconds(30) });
        string path1 = DaemonRig.NewSocketPath();
        daemon1.Start(path1);
        using var rig = new DaemonRig(new CopyDevice(), daemon1, path1);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false, extraProtocolFeatures: Bit20 | Bit23);
        Assert.Equal(Bit20 | Bit23, rig.ProtocolFeatures & (Bit20 | Bit23));
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: true, packed: false, inflight: (inflight, region));

        // Two requests complete; six have their host I/O pending (the gate is the slow disk).
        var submitted = new List<ushort>();
        for (int i = 0; i < 2; i++)
        {
            submitted.Add(rig.Submit(0, DaemonRig.Payload(300 + i)));
        }

        var completed = new List<ushort> { rig.Complete(0), rig.Complete(0) };
        source.CompletionGate.Reset();
        for (int i = 2; i < 8; i++)
        {
            submitted.Add(rig.Submit(0, DaemonRig.Payload(300 + i)));
        }

        Poll.Until(() => Volatile.Read(ref source.Pending) == 6, "the source did not start the six requests");

        // The daemon's drain would wait 30 s for them; the suspension returns at once.
        var stop = Stopwatch.StartNew();
        uint baseValue = f.GetVringBaseSkipDrain(0);
        stop.Stop();
        Assert.True(stop.Elapsed < TimeSpan.FromSeconds(10), $"GET_VRING_BASE_SKIP_DRAIN took {stop.Elapsed}");
        Assert.Equal(8u, baseValue);
        Assert.Equal([(0, 6)], source.SuspendCalls);
        Assert.Equal(6, Volatile.Read(ref source.Cancelled));
        Assert.Equal(0L, Interlocked.Read(ref source.Completed) - 2);

        // Nothing of the six reached the driver, and the region still marks them.
        var splitDriver = ((SplitDriver)rig.Queues[0].Driver).Inner;
        Assert.False(splitDriver.TryGetUsed(out _, out _));
        Assert.Equal(6, MarkedInflight(region, inflight));

        rig.DisconnectFrontend();
        daemon1.Dispose();

        // The destination: the migrated region, the base GET_VRING_BASE_SKIP_DRAIN returned.
        var destination = new CopyDevice();
        using var daemon2 = new VhostUserDaemon(destination);
        string path2 = DaemonRig.NewSocketPath();
        daemon2.Start(path2);
        rig.Daemon = daemon2;
        rig.SocketPath = path2;
        VhostUserFrontend f2 = rig.Connect(eventIdx: true, packed: false);
        f2.SetMemoryTable(rig.MemoryRegions());
        f2.SetInflightFd(inflight, region);
        rig.StartQueue(0, packed: false, baseValue);
        f2.SetVringEnable(0, true);
        for (int i = 0; i < 6; i++)
        {
            completed.Add(rig.Complete(0));
        }

        // The two the source completed may have finished in either order (its host I/O runs
        // concurrently); the six suspended ones are resubmitted, and completed, in ring order.
        Assert.Equal(submitted[..2].Order(), completed[..2].Order());
        Assert.Equal(submitted[2..], completed[2..]);
        Thread.Sleep(50);
        Assert.False(splitDriver.TryGetUsed(out _, out _));
        Assert.Equal(0, MarkedInflight(region, inflight));
    }

    [Fact]
    public void A_late_completion_of_a_suspended_request_is_dropped_and_the_source_resumes_with_the_region()
    {
        var source = new CopyDevice { Async = true, CanSuspend = true, CompleteOneCancelledAnyway = true, ExtraProtocolFeatures = Bit20 };
        using var rig = new DaemonRig(source);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false, extraProtocolFeatures: Bit20 | Bit23);
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: true, packed: false, inflight: (inflight, region));
        source.CompletionGate.Reset();
        var submitted = new List<ushort>();
        for (int i = 0; i < 4; i++)
        {
            submitted.Add(rig.Submit(0, DaemonRig.Payload(400 + i)));
        }

        Poll.Until(() => Volatile.Read(ref source.Pending) == 4, "the source did not start the four requests");
        uint baseValue = f.GetVringBaseSkipDrain(0);
        Assert.Equal(4u, baseValue);

        // The device completes one cancelled request after the stop (a bug): the driver never sees it.
        Thread.Sleep(400);
        var splitDriver = ((SplitDriver)rig.Queues[0].Driver).Inner;
        Assert.False(splitDriver.TryGetUsed(out _, out _));
        Assert.Equal(4, MarkedInflight(region, inflight));

        // The migration failed: the source starts the ring again with the same region and base.
        source.Resume();
        rig.StartQueue(0, packed: false, baseValue);
        f.SetVringEnable(0, true);
        var completed = new List<ushort>();
        for (int i = 0; i < 4; i++)
        {
            completed.Add(rig.Complete(0));
        }

        // Each exactly once (the asynchronous device completes in any order).
        Assert.Equal(submitted.Order(), completed.Order());
        Thread.Sleep(50);
        Assert.False(splitDriver.TryGetUsed(out _, out _));
    }

    [Fact]
    public void Plain_get_vring_base_still_drains_when_skip_drain_is_negotiated_and_suspends_with_bit_20_alone()
    {
        foreach (bool withBit23 in new[] { true, false })
        {
            var source = new CopyDevice { Async = true, CanSuspend = true, ExtraProtocolFeatures = Bit20 };
            using var rig = new DaemonRig(source);
            (VhostUserFrontend f, SafeFileHandle region, VhostUserInflight inflight) = StartWithThreePending(rig, source, withBit23 ? Bit20 | Bit23 : Bit20, seed: 500);
            using var regionOwner = region;
            using (var release = new Timer(_ => source.CompletionGate.Set(), null, 300, Timeout.Infinite))
            {
                Assert.Equal(3u, f.GetVringBase(0));
            }

            if (withBit23)
            {
                // Drained: every request completed on the source, nothing left to resubmit.
                Assert.Empty(source.SuspendCalls);
                for (int i = 0; i < 3; i++)
                {
                    rig.Complete(0);
                }

                Assert.Equal(0, MarkedInflight(region, inflight));
            }
            else
            {
                Assert.Single(source.SuspendCalls);
                Assert.Equal(3, MarkedInflight(region, inflight));
            }
        }
    }

    [Fact]
    public void A_device_that_cannot_suspend_is_drained_instead_and_nothing_is_left_in_flight()
    {
        var source = new CopyDevice { Async = true, CanSuspend = false, ExtraProtocolFeatures = Bit20 };
        using var rig = new DaemonRig(source);
        (VhostUserFrontend f, SafeFileHandle region, VhostUserInflight inflight) = StartWithThreePending(rig, source, Bit20 | Bit23, seed: 600);
        using var regionOwner = region;
        using (var release = new Timer(_ => source.CompletionGate.Set(), null, 300, Timeout.Infinite))
        {
            Assert.Equal(3u, f.GetVringBaseSkipDrain(0));
        }

        Assert.Single(source.SuspendCalls);
        for (int i = 0; i < 3; i++)
        {
            rig.Complete(0);
        }

        Assert.Equal(0, MarkedInflight(region, inflight));
    }

    /// <summary>Connects acking <paramref name="acked"/>, starts ring 0 with an inflight region, and submits three requests whose host I/O stays pending (the gate closed).</summary>
    private static (VhostUserFrontend Frontend, SafeFileHandle Region, VhostUserInflight Inflight) StartWithThreePending(DaemonRig rig, CopyDevice source, VhostUserProtocolFeatures acked, int seed)
    {
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false, extraProtocolFeatures: acked);
        SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: true, packed: false, inflight: (inflight, region));
        source.CompletionGate.Reset();
        for (int i = 0; i < 3; i++)
        {
            rig.Submit(0, DaemonRig.Payload(seed + i));
        }

        Poll.Until(() => Volatile.Read(ref source.Pending) == 3, "the source did not start the three requests");
        return (f, region, inflight);
    }

    /// <summary>How many descriptors queue 0 of the region marks in flight.</summary>
    private static int MarkedInflight(SafeFileHandle region, in VhostUserInflight inflight)
    {
        var bytes = new byte[16 + (inflight.QueueSize * 16)];
        Fd.PRead(region, bytes, 0);
        int marked = 0;
        for (int d = 0; d < inflight.QueueSize; d++)
        {
            marked += bytes[16 + (d * 16)] != 0 ? 1 : 0;
        }

        return marked;
    }
}
