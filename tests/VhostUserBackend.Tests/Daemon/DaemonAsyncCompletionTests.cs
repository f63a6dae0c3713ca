using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// Devices that complete chains later, from other threads (<see cref="Vring.Complete"/>): every
/// completion arrives exactly once with its data, in any order, split and packed, event idx on
/// and off, with an inflight region, under memory-table changes; a ring stops only after its
/// requests finish; a late completion of a stopped ring is dropped; a device wakes its worker.
/// </summary>
public sealed class DaemonAsyncCompletionTests
{
    [Theory]
    [InlineData(false, false, false)]
    [InlineData(false, true, false)]
    [InlineData(true, false, false)]
    [InlineData(true, true, false)]
    [InlineData(false, true, true)]
    public void ManyCompleterThreads_InAnyOrder_NoCompletionIsLostOrDuplicated(bool packed, bool eventIdx, bool inflight)
    {
        var device = new CopyDevice(queues: 2) { Async = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx, packed);
        SafeFileHandle? region = null;
        try
        {
            if (inflight)
            {
                region = f.GetInflightFd(2, 64, out VhostUserInflight description);
                rig.Start(eventIdx, packed, inflight: (description, region));
            }
            else
            {
                rig.Start(eventIdx, packed);
            }

            RunTraffic(rig, requests: 3000, depth: 8);
            Assert.All(rig.Daemon.Vrings.ToArray(), v => Assert.Equal(0, v.InFlight));
            Assert.All(rig.Daemon.Vrings.ToArray(), v => Assert.Equal(0, v.DiscardedCompletions));
        }
        finally
        {
            region?.Dispose();
        }
    }

    [Fact]
    public void MemoryTableChanges_UnderAsynchronousLoad_LoseNothing()
    {
        var device = new CopyDevice(queues: 1) { Async = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);
        using var stop = new CancellationTokenSource();
        Exception? failure = null;
        int tables = 0;
        var updater = new Thread(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    f.SetMemoryTable(rig.MemoryRegions());
                    Interlocked.Increment(ref tables);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        updater.Start();
        try
        {
            RunTraffic(rig, requests: 1500, depth: 8, queues: 1);
            while (Volatile.Read(ref tables) < 20 && failure is null)
            {
                RunTraffic(rig, requests: 50, depth: 8, queues: 1);
            }
        }
        finally
        {
            stop.Cancel();
            updater.Join();
        }

        Assert.Null(failure);
        Assert.Equal(0, rig.Daemon.Vrings[0].DiscardedCompletions);
    }

    [Fact]
    public async Task GetVringBase_WaitsForTheRequestsInFlight_AndReportsEveryOneAsUsed()
    {
        var device = new CopyDevice(queues: 1) { Async = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        device.CompletionGate.Reset();
        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
        }

        Poll.Until(() => Volatile.Read(ref device.Pending) == 5);
        Task<uint> stopping = Task.Run(() => f.GetVringBase(0), TestContext.Current.CancellationToken);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.False(stopping.IsCompleted, "GET_VRING_BASE answered while five requests were still in flight");
        device.CompletionGate.Set();
        Assert.Equal(5u, await stopping.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        for (int i = 0; i < 5; i++)
        {
            rig.Complete(0);
        }

        Assert.Equal(0, rig.Daemon.Vrings[0].InFlight);
    }

    /// <summary>
    /// A device that reaps its completions on its worker (from a listener eventfd, as the blk
    /// sample does with io_uring): GET_VRING_BASE pauses that worker and then waits for the ring's
    /// requests. The control thread delivers the worker's listener events while it waits, so the
    /// requests complete at once (on the control thread, the worker being parked) instead of
    /// after the in-flight timeout, and the base counts them as used.
    /// </summary>
    [Fact]
    public async Task GetVringBase_DeliversTheParkedWorkersListenerEvents_SoADeviceCompletingOnItsWorkerDrains()
    {
        var device = new CopyDevice(queues: 1) { CompleteOnWorkerEvent = true };
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromSeconds(30) });
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);

        // On the worker while it runs.
        rig.Submit(0, DaemonRig.Payload(100));
        Poll.Until(() => Volatile.Read(ref device.Pending) == 1);
        device.WorkerEvent!.Signal();
        rig.Complete(0);

        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
        }

        Poll.Until(() => Volatile.Read(ref device.Pending) == 5);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Task<uint> stopping = Task.Run(() => f.GetVringBase(0), TestContext.Current.CancellationToken);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.False(stopping.IsCompleted, "GET_VRING_BASE answered while five requests were still in flight");
        device.WorkerEvent!.Signal();
        Assert.Equal(6u, await stopping.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"GET_VRING_BASE took {clock.Elapsed.TotalSeconds:F1} s: it waited for the in-flight timeout instead of delivering the worker's listener event");
        for (int i = 0; i < 5; i++)
        {
            rig.Complete(0);
        }

        Assert.Equal(0, daemon.Vrings[0].InFlight);
        Assert.Equal(0, daemon.Vrings[0].DiscardedCompletions);
        Assert.Equal(2, device.WorkerEventThreads.Distinct().Count());
        rig.Dispose();
        daemon.Dispose();
        device.WorkerEvent!.Dispose();
    }

    [Fact]
    public void ACompletionAfterTheRingStopped_IsDropped()
    {
        var device = new CopyDevice(queues: 1) { Async = true };
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromMilliseconds(100) });
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        device.CompletionGate.Reset();
        rig.Submit(0, DaemonRig.Payload(1));
        Poll.Until(() => Volatile.Read(ref device.Pending) == 1);

        // The device does not finish within the bound: the ring stops without the request, which
        // stays unreported (a next back-end would resubmit it from the inflight region).
        Assert.Equal(1u, f.GetVringBase(0));
        device.CompletionGate.Set();
        Poll.Until(() => Volatile.Read(ref device.Pending) == 0);
        Poll.Until(() => daemon.Vrings[0].DiscardedCompletions == 1);
        Assert.False(rig.Queues[0].Driver.TryGetUsed(out _, out _), "a completion of the stopped ring reached the used ring");
    }

    /// <summary>
    /// A packed ring whose memory region goes away and comes back (REM_MEM_REG, ADD_MEM_REG) is
    /// activated again at its position: a chain popped before must still complete. The queue used
    /// to re-create its in-flight store on activation, and the completion then threw on the worker.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AChainPoppedBeforeTheRingWasUnmappedAndMappedAgain_StillCompletes(bool packed)
    {
        const ulong region1 = 0x1000_0000;
        var device = new CopyDevice(queues: 1) { Async = true };
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromMilliseconds(100) });
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path, layout: [(0, 4 << 20), (region1, 1 << 20)]);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: packed);

        // The ring and its buffers live in region 1, which arrives by ADD_MEM_REG.
        rig.Start(eventIdx: false, packed: packed, memoryTable: [rig.RegionInfo(0)], beforeQueue: _ =>
        {
            f.AddMemoryRegion(rig.RegionInfo(1));
            rig.AllocateFromRegion(1);
        });
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        device.CompletionGate.Reset();
        rig.Submit(0, DaemonRig.Payload(2));
        Poll.Until(() => Volatile.Read(ref device.Pending) == 1);
        f.RemoveMemoryRegion(rig.RegionInfo(1));
        Assert.False(daemon.Vrings[0].IsReady);
        f.AddMemoryRegion(rig.RegionInfo(1));
        Assert.True(daemon.Vrings[0].IsReady);

        device.CompletionGate.Set();
        rig.Complete(0);
        rig.Submit(0, DaemonRig.Payload(3));
        rig.Complete(0);
        Assert.Equal(0, daemon.Vrings[0].DiscardedCompletions);
        Assert.Equal(1, f.GetQueueNum());
    }

    [Fact]
    public void RequestProcessing_FromAnotherThread_CallsTheDeviceOnItsWorker()
    {
        var device = new CopyDevice(queues: 1);
        using var rig = new DaemonRig(device);
        rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);

        // After the start-up kicks are handled, a buffer published without a kick is only
        // processed once the device asks for it.
        rig.Submit(0, DaemonRig.Payload(6));
        rig.Complete(0);
        Thread.Sleep(100);
        rig.Submit(0, DaemonRig.Payload(7), kick: false);
        Thread.Sleep(100);
        Assert.Equal(1, Interlocked.Read(ref device.Completed));
        Vring v = rig.Daemon.Vrings[0];
        new Thread(v.RequestProcessing).Start();
        rig.Complete(0);
        Assert.Equal(0, device.ThreadOfQueue[0]);
    }

    [Fact]
    public void DirtyLog_CoversWhatAnAsynchronousDeviceWrote_WithoutTheDeviceMarkingAnything()
    {
        var device = new CopyDevice(queues: 1) { Async = true };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        const int logBytes = 4096;
        using SafeFileHandle log = Fd.CreateMemFd("async-log", logBytes);
        f.SetLogBase(0, new VhostDirtyLogRegion(logBytes, 0, log));
        f.SetFeatures(rig.AckedFeatures | (ulong)VhostUserVirtioFeatures.LogAll);
        f.GetFeatures();
        RigQueue q = rig.Queues[0];
        rig.Submit(0, DaemonRig.Payload(5));
        rig.Complete(0);
        f.GetVringBase(0);
        var bitmap = new byte[logBytes];
        Fd.PRead(log, bitmap, 0);
        ulong output = q.BufferBase + RigQueue.SlotBytes;
        ulong page = output / VhostUserLimits.LogPageSize;
        Assert.True((bitmap[page / 8] & (1 << (int)(page % 8))) != 0, "the page the device wrote is not in the dirty log");
    }

    /// <summary>Keeps up to <paramref name="depth"/> requests per queue outstanding until <paramref name="requests"/> completed; each completion is checked (id in flight, length, bytes).</summary>
    private static void RunTraffic(DaemonRig rig, int requests, int depth, int? queues = null)
    {
        int n = queues ?? rig.Device.QueueCount;
        int submitted = 0;
        int completed = 0;
        var outstanding = new int[n];
        while (completed < requests)
        {
            for (int q = 0; q < n; q++)
            {
                while (outstanding[q] < depth && submitted < requests)
                {
                    rig.Submit(q, DaemonRig.Payload(submitted));
                    submitted++;
                    outstanding[q]++;
                }
            }

            for (int q = 0; q < n; q++)
            {
                if (outstanding[q] > 0)
                {
                    rig.Complete(q);
                    outstanding[q]--;
                    completed++;
                }
            }
        }
    }
}
