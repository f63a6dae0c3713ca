using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>ADD_MEM_REG / REM_MEM_REG (CONFIGURE_MEM_SLOTS) through the daemon.</summary>
public sealed class DaemonMemoryRegionTests
{
    private const ulong Region1 = 0x1000_0000;
    private const ulong Region2 = 0x2000_0000;

    private static readonly (ulong, ulong)[] Layout = [(0, 4 << 20), (Region1, 1 << 20), (Region2, 1 << 20)];

    [Fact]
    public void AddAndRemoveRegions_WhileTrafficRuns_RingInAddedRegion_RemovedAndAddedBack_RefusalsKeepTheDaemonServing()
    {
        var logs = new TestLogger();
        using var factory = logs;
        var device = new CopyDevice(queues: 2, groups: [0b01, 0b10]);
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path, layout: Layout);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);

        // The table holds region 0 only; region 1 arrives by ADD_MEM_REG and ring 1 lives in it.
        rig.Start(eventIdx: true, packed: false, memoryTable: [rig.RegionInfo(0)], beforeQueue: q =>
        {
            if (q == 1)
            {
                f.AddMemoryRegion(rig.RegionInfo(1));
                rig.AllocateFromRegion(1);
            }
        });
        Assert.InRange(rig.Queues[1].Driver.DescriptorAddress, Region1, Region1 + (1 << 20));
        Assert.InRange(rig.Queues[0].Driver.DescriptorAddress, 0UL, 4UL << 20);

        // Region 2 (used by no ring) comes and goes while both rings carry traffic.
        using var stop = new CancellationTokenSource();
        int cycles = 0;
        Exception? failure = null;
        var updater = new Thread(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    f.AddMemoryRegion(rig.RegionInfo(2));
                    f.RemoveMemoryRegion(rig.RegionInfo(2));
                    Interlocked.Increment(ref cycles);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        int memoryUpdatesBefore = device.MemoryUpdates;
        updater.Start();
        int requests = 0;
        try
        {
            for (; requests < 400 || Volatile.Read(ref cycles) < 50; requests++)
            {
                Assert.True(requests < 1_000_000, "the region updater made no progress");
                rig.Submit(requests % 2, DaemonRig.Payload(requests));
                rig.Complete(requests % 2);
            }
        }
        finally
        {
            stop.Cancel();
            updater.Join();
        }

        Assert.Null(failure);
        Assert.True(device.MemoryUpdates - memoryUpdatesBefore >= 2 * cycles);
        Assert.Equal(requests, device.Completed);

        // Removing the region of a started ring unmaps the ring with it, which keeps its position
        // (QEMU removes a changed region and adds it back): ring 0 keeps serving, a request on
        // ring 1 waits, and is served once the region is back.
        f.RemoveMemoryRegion(rig.RegionInfo(1));
        Assert.True(daemon.Vrings[1].IsStarted);
        Assert.False(daemon.Vrings[1].IsReady);
        rig.Submit(0, DaemonRig.Payload(900));
        rig.Complete(0);
        rig.Submit(1, DaemonRig.Payload(901));
        f.AddMemoryRegion(rig.RegionInfo(1));
        rig.Complete(1);
        Assert.True(daemon.Vrings[1].IsReady);
        logs.WaitFor("ring 1 is mapped again");

        // Refused, each with its reason, and the connection carries on.
        AssertRefused(logs, () => f.RemoveMemoryRegion(new VhostMemoryRegionInfo(0x3000_0000, 1 << 20, rig.RegionInfo(2).UserAddress, 0, rig.Ram.FileHandle)), "REM_MEM_REG: no memory region [0x30000000, +0x100000) is mapped");
        AssertRefused(logs, () => f.RemoveMemoryRegion(rig.RegionInfo(2)), "REM_MEM_REG: no memory region [0x20000000");
        VhostMemoryRegionInfo r1 = rig.RegionInfo(1);
        AssertRefused(logs, () => f.AddMemoryRegion(new VhostMemoryRegionInfo(r1.GuestPhysicalAddress, r1.Size, rig.RegionInfo(2).UserAddress, r1.MmapOffset, r1.Fd)), "ADD_MEM_REG: region [0x10000000, +0x100000) is already mapped from another file, offset or user address");
        AssertRefused(logs, () => f.AddMemoryRegion(new VhostMemoryRegionInfo(Region1 + 0x8_0000, r1.Size, rig.RegionInfo(2).UserAddress, rig.Ram.Regions[2].FileOffset, r1.Fd)), "ADD_MEM_REG: region [0x10080000, +0x100000) refused");
        Assert.Equal(2, f.GetQueueNum());
        for (int i = 0; i < 20; i++)
        {
            rig.Submit(i % 2, DaemonRig.Payload(1000 + i));
            rig.Complete(i % 2);
        }

        // Once ring 1 is stopped its region may go; ring 0 keeps serving.
        f.GetVringBase(1);
        f.RemoveMemoryRegion(rig.RegionInfo(1));
        Assert.False(daemon.Vrings[1].IsStarted);
        for (int i = 0; i < 10; i++)
        {
            rig.Submit(0, DaemonRig.Payload(2000 + i));
            rig.Complete(0);
        }
    }

    [Fact]
    public void TheSameRegionAddedAgain_IsCounted_AndGoesWithTheLastRemove()
    {
        // QEMU 7.2 with mq=on: one vhost device per queue pair on one connection, each sending its
        // own ADD_MEM_REG / REM_MEM_REG for every region.
        var logs = new TestLogger();
        using var factory = logs;
        var device = new CopyDevice();
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path, layout: Layout);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false, memoryTable: [rig.RegionInfo(0)]);

        VhostMemoryRegionInfo r2 = rig.RegionInfo(2);
        f.AddMemoryRegion(r2);
        int updates = device.MemoryUpdates;
        f.AddMemoryRegion(r2);
        f.AddMemoryRegion(r2);
        Assert.Equal(updates, device.MemoryUpdates);            // repeats change nothing
        Assert.Equal(2, Regions(device));

        // Same addresses and size from another file: refused, the mapped region stays.
        using SafeFileHandle other = Fd.CreateMemFd("other", 4 << 20);
        AssertRefused(logs, () => f.AddMemoryRegion(new VhostMemoryRegionInfo(r2.GuestPhysicalAddress, r2.Size, r2.UserAddress, 0, other)), "is already mapped from another file, offset or user address");
        Assert.Equal(2, Regions(device));

        f.RemoveMemoryRegion(r2);
        f.RemoveMemoryRegion(r2);
        Assert.Equal(2, Regions(device));                        // one add still stands
        f.RemoveMemoryRegion(r2);
        Assert.Equal(1, Regions(device));
        AssertRefused(logs, () => f.RemoveMemoryRegion(r2), "REM_MEM_REG: no memory region [0x20000000");

        // A new table starts the counts again; traffic carries on throughout.
        f.AddMemoryRegion(r2);
        f.AddMemoryRegion(r2);
        f.SetMemoryTable([rig.RegionInfo(0), r2]);
        f.RemoveMemoryRegion(r2);
        Assert.Equal(1, Regions(device));
        rig.Submit(0, DaemonRig.Payload(7));
        rig.Complete(0);
    }

    private static int Regions(CopyDevice device)
    {
        VhostUserBackend.Memory.GuestMemory memory = device.Memory!.Acquire();
        try
        {
            return memory.Regions.Count;
        }
        finally
        {
            memory.Release();
        }
    }

    private static void AssertRefused(TestLogger logs, Action request, string reason)
    {
        Assert.ThrowsAny<VhostUserException>(request);
        logs.WaitFor(reason);
    }
}
