using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// A device that holds chains (popped, waiting for data) puts them back when the daemon asks
/// (<see cref="IVhostUserBackend.UnpopHeldChains"/>): a stop reports a base without them and does
/// not wait the in-flight timeout, a restart pops the same chains again.
/// </summary>
public sealed class DaemonUnpopTests
{
    /// <summary>Far below the daemon's default in-flight timeout (5 s), which a held chain used to cost.</summary>
    private static readonly TimeSpan Fast = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void GetVringBase_excludes_the_held_chains_at_once_and_a_restart_pops_the_same_heads(bool packed, bool inflight)
    {
        var device = new CopyDevice { CompleteLimit = 2, PutBackHeld = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed);
        VhostUserInflight description = default;
        SafeFileHandle? region = inflight ? f.GetInflightFd(1, 64, out description) : null;
        using (region)
        {
            rig.Start(eventIdx: true, packed, inflight: region is null ? null : (description, region));
            for (int i = 0; i < 5; i++)
            {
                rig.Submit(0, DaemonRig.Payload(i));
            }

            rig.Complete(0);
            rig.Complete(0);
            Poll.Until(() => Interlocked.Read(ref device.Held) == 3, "the device did not hold the last 3 chains");
            ushort[] held = Snapshot(device.HeldChains[0]).Select(c => c.Head).ToArray();
            Vring vring = rig.Daemon.Vrings[0];
            Assert.Equal(3, vring.InFlight);

            var watch = Stopwatch.StartNew();
            uint stoppedAt = f.GetVringBase(0);
            watch.Stop();

            // Two chains of two descriptors consumed; the three held ones are back in the ring.
            Assert.True(watch.Elapsed < Fast, $"GET_VRING_BASE took {watch.Elapsed.TotalMilliseconds:F0} ms");
            Assert.Equal(packed ? 4u | (1u << 15) | (4u << 16) | (1u << 31) : 2u, stoppedAt);
            Assert.Equal(0, vring.InFlight);
            Assert.Equal(0, Interlocked.Read(ref device.Held));
            Assert.Equal([(0, 3)], device.UnpopCalls);
            if (region is not null)
            {
                foreach (ushort head in held)
                {
                    var mark = new byte[1];
                    Fd.PRead(region, mark, 16 + (16L * head));
                    Assert.Equal(0, mark[0]);
                }
            }

            // The front-end starts the ring again from that base: the same chains come first.
            int poppedBefore = Snapshot(device.PoppedHeads[0]).Count;
            device.CompleteLimit = -1;
            rig.StartQueue(0, packed, stoppedAt);
            f.SetVringEnable(0, true);
            ushort[] completed = [rig.Complete(0), rig.Complete(0), rig.Complete(0)];
            Assert.Equal(held, completed);
            Assert.Equal(held, Snapshot(device.PoppedHeads[0]).Skip(poppedBefore));
            Assert.Empty(rig.Queues[0].InFlight);

            rig.Submit(0, DaemonRig.Payload(9));
            rig.Complete(0);
            Assert.Equal(0L, vring.DiscardedCompletions);
        }
    }

    [Fact]
    public void A_memory_update_takes_the_held_chains_back_and_the_device_pops_them_again_under_the_new_memory()
    {
        var device = new CopyDevice { CompleteLimit = 1, PutBackHeld = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);
        for (int i = 0; i < 4; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
        }

        rig.Complete(0);
        Poll.Until(() => Interlocked.Read(ref device.Held) == 3, "the device did not hold the last 3 chains");
        ushort[] held = Snapshot(device.HeldChains[0]).Select(c => c.Head).ToArray();

        // From now on the device completes what it pops; the held chains wait for the update.
        device.CompleteLimit = -1;
        var watch = Stopwatch.StartNew();
        f.SetMemoryTable(rig.MemoryRegions());
        watch.Stop();
        Assert.True(watch.Elapsed < Fast, $"SET_MEM_TABLE took {watch.Elapsed.TotalMilliseconds:F0} ms");

        ushort[] completed = [rig.Complete(0), rig.Complete(0), rig.Complete(0)];
        Assert.Equal(held, completed);
        Assert.Contains((0, 3), device.UnpopCalls);
        Assert.Equal(4u, f.GetVringBase(0));
    }

    [Fact]
    public void A_disconnect_with_held_chains_releases_the_front_end_at_once()
    {
        var device = new CopyDevice { CompleteLimit = 0, PutBackHeld = true };
        using var rig = new DaemonRig(device);
        rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Submit(0, DaemonRig.Payload(2));
        Poll.Until(() => Interlocked.Read(ref device.Held) == 2, "the device did not hold the chains");

        var watch = Stopwatch.StartNew();
        rig.DisconnectFrontend();
        DaemonRig.WaitDisconnected(rig.Daemon, 1);
        Assert.True(watch.Elapsed < Fast, $"the disconnect took {watch.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal([(0, 2)], device.UnpopCalls);
        Assert.Equal(0, rig.Daemon.Vrings[0].InFlight);
    }

    [Fact]
    public void A_stopping_ring_hands_out_nothing_while_the_daemon_drains_so_the_chains_put_back_stay_back()
    {
        // Chain 1 is in flight for real (completed by a listener event); chains 2 and 3 are held.
        // At GET_VRING_BASE the held ones go back and the daemon waits for chain 1, delivering the
        // device's listener events itself; the device then looks at its rings (as one fed by a
        // socket does) before completing chain 1: it must not get the chains put back again.
        var device = new CopyDevice { CompleteLimit = 1, PutBackHeld = true, CompleteOnWorkerEvent = true, ProcessRingsOnWorkerEvent = true, SignalWorkerEventOnUnpop = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);
        for (int i = 0; i < 3; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
        }

        Poll.Until(() => Volatile.Read(ref device.Pending) == 1 && Interlocked.Read(ref device.Held) == 2, "the device did not take the three chains");

        var watch = Stopwatch.StartNew();
        uint stoppedAt = f.GetVringBase(0);
        Assert.True(watch.Elapsed < Fast, $"GET_VRING_BASE took {watch.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(1u, stoppedAt);
        Assert.Equal(1L, Interlocked.Read(ref device.Completed));
        Assert.Equal(0L, Interlocked.Read(ref device.Held));
        Assert.Equal(0, rig.Daemon.Vrings[0].InFlight);
        rig.Complete(0);
    }

    [Fact]
    public void A_device_that_puts_back_out_of_order_is_refused_logged_and_its_chains_abandoned_without_corrupting_the_base()
    {
        var device = new CopyDevice { CompleteLimit = 0, PutBackHeld = true, PutBackOldestFirst = true };
        var logs = new TestLogger();
        using var factory = logs;
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromMilliseconds(100) }, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Submit(0, DaemonRig.Payload(2));
        Poll.Until(() => Interlocked.Read(ref device.Held) == 2, "the device did not hold the chains");

        // The first put-back (the oldest chain) is refused, nothing moved: both chains are
        // abandoned after the timeout and the base counts them, as without a put-back.
        Assert.Equal(2u, f.GetVringBase(0));
        logs.WaitFor("failed putting back its held chains before GET_VRING_BASE");
        Assert.Contains(logs.Lines, e => e.Contains("newest first", StringComparison.Ordinal));
        Assert.Equal(0, daemon.Vrings[0].InFlight);
    }

    private static List<T> Snapshot<T>(List<T> list)
    {
        lock (list)
        {
            return [.. list];
        }
    }
}
