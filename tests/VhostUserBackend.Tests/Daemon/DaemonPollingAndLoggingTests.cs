using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

public sealed class DaemonPollingAndLoggingTests
{
    [Fact]
    public void PollingWorker_ProcessesBuffersPublishedWithoutAKick()
    {
        var device = new CopyDevice { PollingTime = TimeSpan.FromMilliseconds(500) };
        using var rig = new DaemonRig(device);
        rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        // Inside the polling window the worker spins on the ring: no kick is needed.
        for (int i = 0; i < 20; i++)
        {
            rig.Submit(0, DaemonRig.Payload(10 + i), kick: false);
            rig.Complete(0);
        }

        Assert.Equal(21, device.Completed);

        // After the window, notifications are back on: the driver is asked to kick again.
        long start = Environment.TickCount64;
        while (rig.Daemon.Vrings[0].IsPolling && Environment.TickCount64 - start < 5000)
        {
            Thread.Sleep(10);
        }

        Assert.True(Environment.TickCount64 - start < 2000, $"polling lasted {Environment.TickCount64 - start} ms after the last buffer");
        rig.Submit(0, DaemonRig.Payload(99));
        rig.Complete(0);
    }

    /// <summary>
    /// Two rings on one polling worker: while ring 0 streams (the worker never leaves its polling
    /// window), ring 1 is enabled and kicked. It must be served at once, not when ring 0 goes idle.
    /// </summary>
    [Fact]
    public void Polling_ARingEnabledWhileAnotherStreams_IsServedAtOnce()
    {
        var device = new CopyDevice(queues: 2) { PollingTime = TimeSpan.FromSeconds(2) };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        f.SetVringEnable(1, false);
        using var stop = new CancellationTokenSource();
        int streamed = 0;
        var streamer = new Thread(() =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                rig.Submit(0, DaemonRig.Payload(i));
                rig.Complete(0);
                Interlocked.Increment(ref streamed);
            }
        });
        streamer.Start();
        try
        {
            while (Volatile.Read(ref streamed) < 50)
            {
                Thread.Sleep(1);
            }

            f.SetVringEnable(1, true);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            rig.Submit(1, DaemonRig.Payload(1000));
            rig.Complete(1);
            Assert.True(watch.ElapsedMilliseconds < 1000, $"ring 1 waited {watch.ElapsedMilliseconds} ms while ring 0 streamed");
        }
        finally
        {
            stop.Cancel();
            streamer.Join();
        }
    }

    /// <summary>
    /// A ring started after a pause of its polling worker (GET_VRING_BASE, disabled, a new kick,
    /// then enabled, as QEMU 10 blk does) serves its first request at once, not after the polling
    /// window the worker entered right after the pause.
    /// </summary>
    [Fact]
    public void Polling_TheFirstRequestAfterARestart_DoesNotWaitForTheWindow()
    {
        var device = new CopyDevice(queues: 1) { PollingTime = TimeSpan.FromSeconds(2) };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);
        Thread.Sleep(2500);             // the window has ended: the worker sleeps in epoll

        uint position = f.GetVringBase(0);
        f.SetVringEnable(0, false);
        rig.StartQueue(0, packed: false, baseValue: position);
        f.SetVringEnable(0, true);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        rig.Submit(0, DaemonRig.Payload(2));
        rig.Complete(0);
        Assert.True(watch.ElapsedMilliseconds < 1000, $"the first request after the restart took {watch.ElapsedMilliseconds} ms");
    }

    /// <summary>
    /// QEMU's migration sequence on a running ring: SET_LOG_BASE, SET_FEATURES with LOG_ALL, then
    /// SET_VRING_ADDR with VHOST_VRING_F_LOG (same addresses, NEED_REPLY) without stopping the
    /// ring; the written buffer and the used ring are logged, the used ring at the log address.
    /// Turning LOG_ALL off (a cancelled migration) stops logging and unmaps the log.
    /// </summary>
    [Fact]
    public void MigrationSequence_OnARunningRing_LogsBuffersAndTheUsedRing_ThenLoggingOffUnmapsTheLog()
    {
        var device = new CopyDevice();
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        Assert.NotEqual(0UL, f.GetFeatures() & (ulong)VhostUserVirtioFeatures.LogAll);
        RigQueue q = rig.Queues[0];
        rig.Submit(0, DaemonRig.Payload(4));
        rig.Complete(0);

        const int logBytes = 4096;
        using SafeFileHandle log = Fd.CreateMemFd("mig-dirty-log", logBytes);
        using var logEvent = new EventFd(EventFdFlags.NonBlocking);
        f.SetLogFd(logEvent);
        f.SetLogBase(0, new VhostDirtyLogRegion(logBytes, 0, log));
        f.SetFeatures(rig.AckedFeatures | (ulong)VhostUserVirtioFeatures.LogAll);
        VringConfigData ring = RingAddress(rig, q, VringFlags.Log, q.Driver.DeviceAreaAddress);
        f.SetVringAddress(0, ring);           // on the started ring, as QEMU sends it (acked: REPLY_ACK)
        Assert.True(rig.Daemon.Vrings[0].IsStarted);

        rig.Submit(0, DaemonRig.Payload(5));
        rig.Complete(0);
        var bitmap = new byte[logBytes];
        f.GetVringBase(0);                 // the ring stops (its last marks are in) as at migration end
        Fd.PRead(log, bitmap, 0);
        ulong output = q.BufferBase + RigQueue.SlotBytes;
        Assert.True(IsDirty(bitmap, output), "the written buffer's page is not logged");
        Assert.True(IsDirty(bitmap, q.Driver.DeviceAreaAddress), "the used ring's page is not logged");
        Assert.False(IsDirty(bitmap, q.BufferBase + (1 << 20)), "an untouched page is logged");
        Assert.True(logEvent.TryRead(out ulong signals) && signals > 0, "SET_LOG_FD's eventfd was not signalled");

        // Moving a running ring is refused (failed acknowledgement), the connection carries on.
        rig.StartQueue(0, packed: false, baseValue: 0);
        Assert.ThrowsAny<VhostUserException>(() => f.SetVringAddress(0, new VringConfigData(ring.QueueMaxSize, ring.QueueSize, ring.Flags, ring.DescriptorTableAddress, ring.UsedRingAddress + 0x1000, ring.AvailableRingAddress, ring.LogAddress)));

        // The restarted ring's worker logs what its start writes (the used ring) on its own thread:
        // one request through it first, so that none of it lands after the log is cleared below
        // (under load it did: page 0 marked after the clear).
        rig.Submit(0, DaemonRig.Payload(7));
        rig.Complete(0);

        // Logging off: new writes are not logged any more, and the log is unmapped.
        Assert.Contains("mig-dirty-log", File.ReadAllText("/proc/self/maps"), StringComparison.Ordinal);
        Array.Clear(bitmap);
        Fd.PWrite(log, bitmap, 0);
        f.SetFeatures(rig.AckedFeatures);
        f.SetVringAddress(0, RingAddress(rig, q, VringFlags.None, null));
        rig.Submit(0, DaemonRig.Payload(6));
        rig.Complete(0);
        Fd.PRead(log, bitmap, 0);
        Assert.DoesNotContain(bitmap, b => b != 0);
        Assert.DoesNotContain("mig-dirty-log", File.ReadAllText("/proc/self/maps"), StringComparison.Ordinal);
    }

    [Fact]
    public void RingLogFlag_WithoutLogAll_AndLogAll_WithoutTheFlag_LogOnlyWhatTheyCover()
    {
        var device = new CopyDevice();
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        RigQueue q = rig.Queues[0];
        const int logBytes = 4096;
        using SafeFileHandle log = Fd.CreateMemFd("dirty-log", logBytes);
        f.SetLogBase(0, new VhostDirtyLogRegion(logBytes, 0, log));

        // LOG_ALL without the ring flag: buffers only (the spec logs ring writes only with VHOST_VRING_F_LOG).
        f.SetFeatures(rig.AckedFeatures | (ulong)VhostUserVirtioFeatures.LogAll);
        rig.Submit(0, DaemonRig.Payload(5));
        rig.Complete(0);
        f.GetVringBase(0);
        var bitmap = new byte[logBytes];
        Fd.PRead(log, bitmap, 0);
        Assert.True(IsDirty(bitmap, q.BufferBase + RigQueue.SlotBytes));
        Assert.False(IsDirty(bitmap, q.Driver.DeviceAreaAddress) && (q.Driver.DeviceAreaAddress / 4096) != ((q.BufferBase + RigQueue.SlotBytes) / 4096), "the used ring was logged without VHOST_VRING_F_LOG");
    }

    private static VringConfigData RingAddress(DaemonRig rig, RigQueue q, VringFlags flags, ulong? logAddress)
        => new(q.Driver.Size, q.Driver.Size, flags, rig.UserAddress(q.Driver.DescriptorAddress), rig.UserAddress(q.Driver.DeviceAreaAddress), rig.UserAddress(q.Driver.DriverAreaAddress), logAddress);

    private static bool IsDirty(byte[] bitmap, ulong gpa)
    {
        ulong page = gpa / VhostUserLimits.LogPageSize;
        return (bitmap[page / 8] & (1 << (int)(page % 8))) != 0;
    }
}
