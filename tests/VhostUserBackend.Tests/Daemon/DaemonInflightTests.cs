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

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BackendKilledMidTraffic_NewBackendWithTheRegion_CompletesEveryRequestExactlyOnce(bool packed)
    {
        var first = new CopyDevice { CompleteLimit = 105 };
        var daemon1 = new VhostUserDaemon(first);
        string path1 = DaemonRig.NewSocketPath();
        daemon1.Start(path1);
        using var rig = new DaemonRig(first, daemon1, path1);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed);

        // QEMU: GET_INFLIGHT_FD, then SET_INFLIGHT_FD with the same region, before the rings start.
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: true, packed, inflight: (inflight, region));

        // Three laps of the ring first (two descriptors a request), so its position is far from the start.
        for (int i = 0; i < 100; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Complete(0);
        }

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

        Poll.Until(() => Interlocked.Read(ref first.Held) == 5, "the first back-end did not take the other 5 requests");

        // The back-end dies with 5 requests popped and unanswered.
        rig.DisconnectFrontend();
        daemon1.Dispose();

        var second = new CopyDevice();
        using var daemon2 = new VhostUserDaemon(second);
        string path2 = DaemonRig.NewSocketPath();
        daemon2.Start(path2);
        rig.Daemon = daemon2;
        rig.SocketPath = path2;
        rig.Connect(eventIdx: true, packed);

        // The base sent is the ring's initial one. A split ring's position comes from its used index
        // (what QEMU restores after a crash); a packed ring's from the region: QEMU cannot read it
        // back and resends the base of the ring's last start.
        rig.Start(eventIdx: true, packed, inflight: (inflight, region), freshDrivers: false);
        for (int i = 0; i < 5; i++)
        {
            completed.Add(rig.Complete(0));
        }

        // Resubmitted in their original order, each exactly once, nothing else.
        Assert.Equal(submitted, completed);
        Thread.Sleep(50);
        Assert.False(rig.Queues[0].Driver.TryGetUsed(out _, out _));
        Assert.Equal(5, second.Completed);
        Assert.Empty(rig.Queues[0].InFlight);

        // New traffic continues from where the ring stands.
        for (int i = 0; i < 150; i++)
        {
            rig.Submit(0, DaemonRig.Payload(200 + i));
            rig.Complete(0);
        }

        Assert.Equal(155, second.Completed);
        Assert.Equal(260, first.Completed + second.Completed); // 100 + 10 + 150 requests, each once
        if (!packed)
        {
            Assert.Equal(260, ((SplitDriver)rig.Queues[0].Driver).Inner.DeviceUsedIndex);
        }
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
        Poll.Until(() => logs.Lines.Any(e => e.Contains("inflight region", StringComparison.Ordinal) && e.Contains(reason, StringComparison.Ordinal)), $"no log entry names the {reason}");
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
    public void PackedRing_InflightRegion_HasThePackedLayout_SetUpAtTheRingStart()
    {
        using var rig = new DaemonRig(new CopyDevice(queues: 2, groups: [0b11]));
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: true);
        using SafeFileHandle fd = f.GetInflightFd(2, 64, out VhostUserInflight inflight);
        Assert.Equal(InflightRegion.RegionSize(2, 64, packed: true), inflight.MmapSize);
        Assert.Equal(2 * 2112UL, inflight.MmapSize); // 32 * 64 + 29, aligned up to 64, per queue (DPDK's size)
        var header = new byte[32];
        Fd.PRead(fd, header, 0);
        Assert.Equal(rig.AckedFeatures, BitConverter.ToUInt64(header, 0));
        Assert.Equal(0, BitConverter.ToUInt16(header, 8)); // not set up until the ring starts
        rig.Start(eventIdx: false, packed: true, inflight: (inflight, fd));
        for (int q = 0; q < 2; q++)
        {
            Fd.PRead(fd, header, (long)InflightRegion.QueueStride(64, packed: true) * q);
            Assert.Equal(VhostUserInflightPackedQueue.CurrentVersion, BitConverter.ToUInt16(header, 8));
            Assert.Equal(64, BitConverter.ToUInt16(header, 10));
            Assert.Equal(1, header[20]);
        }

        rig.Submit(1, DaemonRig.Payload(1));
        rig.Complete(1);
        Fd.PRead(fd, header, (long)InflightRegion.QueueStride(64, packed: true));
        Assert.Equal(2, BitConverter.ToUInt16(header, 16)); // used_idx: one chain of two descriptors
        Assert.Equal(2, BitConverter.ToUInt16(header, 18));
        Assert.NotNull(rig.Daemon.Vrings[0].Inflight);
    }

    [Theory]
    [InlineData("version", "version")]
    [InlineData("used_idx", "does not fit")]
    [InlineData("free list loop", "loops")]
    [InlineData("buffer id", "buffer id")]
    [InlineData("entry lost", "hold")]
    public void PackedRing_HostileInflightRegion_FailsTheRingStart_AndTheConnectionSurvives(string garbage, string reason)
    {
        var device = new CopyDevice();
        var logs = new TestLogger();
        using var factory = logs;
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: true);
        using SafeFileHandle region = f.GetInflightFd(1, 64, out VhostUserInflight inflight);
        rig.Start(eventIdx: false, packed: true, inflight: (inflight, region));
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);
        f.GetVringBase(0);

        // The free list is 0 -> 1 -> ... -> 63 -> 64 (the end); entry e at 32 + 32 e (next at +2).
        switch (garbage)
        {
            case "version":
                Fd.PWrite(region, [9, 0], 8);
                break;
            case "used_idx":
                Fd.PWrite(region, [0x40, 0], 16);
                break;
            case "free list loop":
                Fd.PWrite(region, [0, 0], 32 + 32 + 2);
                break;
            case "buffer id":
                // Entry 0 taken off the free list as a chain of one whose buffer id is past the queue.
                Fd.PWrite(region, [1, 0, 1, 0], 12);
                Fd.PWrite(region, [1, 0, 1, 0, 0, 0, 1, 0], 32);
                Fd.PWrite(region, [0xff, 0, 0, 0], 32 + 16); // id, flags (no NEXT: the chain's last descriptor)
                break;
            case "entry lost":
                Fd.PWrite(region, [2, 0], 32 + 2);
                break;
        }

        VhostUserException failure = Assert.ThrowsAny<VhostUserException>(() => rig.StartQueue(0, packed: true));
        Poll.Until(() => logs.Lines.Any(e => e.Contains("packed inflight region", StringComparison.Ordinal) && e.Contains(reason, StringComparison.Ordinal)), $"no log entry names the {reason}: {failure}\n{string.Join('\n', logs.Lines)}");
        Assert.False(daemon.Vrings[0].IsStarted);
        Assert.Equal(1, f.GetQueueNum());
    }

    [Fact]
    public void PackedRing_RegionTooSmallForThePackedLayout_IsRejected()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: true);
        using SafeFileHandle region = Fd.CreateMemFd("inflight", (long)InflightRegion.RegionSize(1, 64));
        Fd.AddSeals(region, Interop.F_SEAL_SHRINK | Interop.F_SEAL_GROW);

        // A split-sized region (half of what 64 packed entries need) is refused, the connection survives.
        var description = new VhostUserInflight { MmapSize = InflightRegion.RegionSize(1, 64), QueueCount = 1, QueueSize = 64 };
        Assert.ThrowsAny<VhostUserException>(() => f.SetInflightFd(description, region));
        Assert.Equal(1, f.GetQueueNum());
    }
}
