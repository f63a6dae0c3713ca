using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Daemon;

public sealed class DaemonInflightTests
{
    [Fact]
    public void InflightRegion_HasTheSplitLayout()
    {
        using var rig = new DaemonRig(new CopyDevice(queues: 2, groups: [0b11]));
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        using SafeFileHandle fd = f.GetInflightFd(2, 64, out VhostUserInflight inflight);
        Assert.Equal(InflightRegion.RegionSize(2, 64), inflight.MmapSize);
        Assert.Equal(0UL, inflight.MmapOffset);
        Assert.Equal(2 * 1088UL, inflight.MmapSize); // 16 + 64 * 16 + 2, aligned up to 64, per queue
        var header = new byte[16];
        for (int q = 0; q < 2; q++)
        {
            Fd.PRead(fd, header, (long)InflightRegion.QueueStride(64) * q);
            Assert.Equal(rig.AckedFeatures, BitConverter.ToUInt64(header, 0));
            Assert.Equal(VhostUserInflightSplitQueue.CurrentVersion, BitConverter.ToUInt16(header, 8));
            Assert.Equal(64, BitConverter.ToUInt16(header, 10));
        }
    }

    [Fact]
    public void BackendKilledMidTraffic_NewBackendWithTheRegion_CompletesEveryRequestExactlyOnce()
    {
        var first = new CopyDevice { CompleteLimit = 5 };
        var daemon1 = new VhostUserDaemon(first);
        string path1 = DaemonRig.NewSocketPath();
        daemon1.Start(path1);
        using var rig = new DaemonRig(first, daemon1, path1);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);

        // QEMU: GET_INFLIGHT_FD, then SET_INFLIGHT_FD with the same region, before the rings start.
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: true, packed: false, inflight: (inflight, region));
        var submitted = new List<ushort>();
        for (int i = 0; i < 10; i++)
        {
            submitted.Add(rig.Submit(0, DaemonRig.Payload(100 + i)));
        }

        var completed = new List<ushort>();
        for (int i = 0; i < 5; i++)
        {
            completed.Add(rig.Complete(0));
        }

        WaitFor(() => Interlocked.Read(ref first.Held) == 5, "the first back-end did not take the other 5 requests");

        // The back-end dies with 5 requests popped and unanswered.
        rig.DisconnectFrontend();
        daemon1.Dispose();

        var second = new CopyDevice();
        using var daemon2 = new VhostUserDaemon(second);
        string path2 = DaemonRig.NewSocketPath();
        daemon2.Start(path2);
        rig.Daemon = daemon2;
        rig.SocketPath = path2;
        rig.Connect(eventIdx: true, packed: false);

        // QEMU restores the base from the used index after a crash; the region says what is inflight.
        var splitDriver = ((SplitDriver)rig.Queues[0].Driver).Inner;
        rig.Start(eventIdx: true, packed: false, inflight: (inflight, region), freshDrivers: false);
        for (int i = 0; i < 5; i++)
        {
            completed.Add(rig.Complete(0));
        }

        // Resubmitted in their original order, each exactly once, nothing else.
        Assert.Equal(submitted, completed);
        Thread.Sleep(50);
        Assert.False(splitDriver.TryGetUsed(out _, out _));
        Assert.Equal(5, second.Completed);
        Assert.Empty(rig.Queues[0].InFlight);

        // New traffic continues from where the ring stands.
        for (int i = 0; i < 20; i++)
        {
            rig.Submit(0, DaemonRig.Payload(200 + i));
            rig.Complete(0);
        }

        Assert.Equal(25, second.Completed);
        Assert.Equal(30, splitDriver.DeviceUsedIndex);
    }

    [Fact]
    public void CompletedRequestInLastBatch_IsNotRepeated_WhenTheBackendDiedBeforeClearingIt()
    {
        // Simulate a death between publishing a used element and clearing its inflight mark: the
        // region still says head X is inflight but its used index lags the ring's by one.
        var device = new CopyDevice();
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: false, packed: false, inflight: (inflight, region));
        ushort head = rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);
        Assert.Equal(1u, f.GetVringBase(0));

        // Undo the clear: inflight = 1 for the head, used_idx back to 0, last batch head = head.
        Fd.PWrite(region, [1], 16 + (16 * head));
        Fd.PWrite(region, BitConverter.GetBytes(head), 12);
        Fd.PWrite(region, BitConverter.GetBytes((ushort)0), 14);

        rig.StartQueue(0, packed: false, baseValue: 1);
        f.SetVringEnable(0, true);
        rig.Submit(0, DaemonRig.Payload(2));
        rig.Complete(0);
        Assert.Equal(2, device.Completed);
        var header = new byte[16];
        Fd.PRead(region, header, 0);
        Assert.Equal(2, BitConverter.ToUInt16(header, 14));
    }

    [Theory]
    [InlineData(8, new byte[] { 9, 0 }, "version")]
    [InlineData(10, new byte[] { 7, 0 }, "descriptor entries")]
    [InlineData(16, new byte[] { 5 }, "inflight byte")]
    [InlineData(12, new byte[] { 0xff, 0x7f }, "last batch head")]
    public void HostileInflightRegion_FailsTheRingStart_AndTheConnectionSurvives(long offset, byte[] bytes, string reason)
    {
        var device = new CopyDevice();
        var logs = new TestLogger();
        using var factory = logs;
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        Fd.PWrite(region, bytes, offset);
        if (offset == 12)
        {
            Fd.PWrite(region, BitConverter.GetBytes((ushort)3), 14); // used index differs from the ring's
        }

        Assert.ThrowsAny<VhostUserException>(() => rig.Start(eventIdx: false, packed: false, inflight: (inflight, region)));
        // The nack reaches the front-end just before the daemon logs the reason.
        WaitFor(() => logs.Lines.Any(e => e.Contains("inflight region", StringComparison.Ordinal) && e.Contains(reason, StringComparison.Ordinal)), $"no log entry names the {reason}");
        Assert.False(daemon.Vrings[0].IsStarted);
        Assert.Equal(1, f.GetQueueNum());
    }

    [Fact]
    public void InflightRegionTooSmall_IsRejected()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        VhostUserInflight lying = inflight with { QueueSize = 1024 };
        Assert.ThrowsAny<VhostUserException>(() => f.SetInflightFd(lying, region));
        VhostUserInflight past = inflight with { MmapSize = inflight.MmapSize * 4, QueueCount = 4 };
        Assert.ThrowsAny<VhostUserException>(() => f.SetInflightFd(past, region));
        Assert.Equal(1, f.GetQueueNum());
    }

    [Fact]
    public void PackedRing_InflightFd_IsRefusedWithTheReason_AndTheDeviceRunsWithoutIt()
    {
        var logs = new TestLogger();
        using var factory = logs;
        var device = new CopyDevice();
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: true);
        Assert.ThrowsAny<VhostUserException>(() => f.GetInflightFd(1, 64, out _));
        logs.WaitFor("GetInflightFd: inflight tracking is implemented for split rings only");

        // A region handed back for a packed device is refused the same way.
        using (SafeFileHandle region = Fd.CreateMemFd("inflight", (long)InflightRegion.RegionSize(1, 64)))
        {
            var description = new VhostUserInflight { MmapSize = InflightRegion.RegionSize(1, 64), QueueCount = 1, QueueSize = 64 };
            Assert.ThrowsAny<VhostUserException>(() => f.SetInflightFd(description, region));
        }

        logs.WaitFor("SetInflightFd: inflight tracking is implemented for split rings only");
        rig.Start(eventIdx: false, packed: true);
        for (int i = 0; i < 10; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Complete(0);
        }

        Assert.Null(daemon.Vrings[0].Inflight);
    }

    private static void WaitFor(Func<bool> condition, string message)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, message);
            Thread.Sleep(1);
        }
    }
}
