using Microsoft.Win32.SafeHandles;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

public sealed class SplitQueueTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Fact]
    public void EmptyRing_PopsNothing()
    {
        using var rig = QueueRig.CreateSplit();
        Assert.False(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        Assert.Null(chain.Queue);
        Assert.Throws<InvalidOperationException>(() => chain.GetEnumerator());
    }

    [Fact]
    public void DirectChain_RoundTrip()
    {
        using var rig = QueueRig.CreateSplit();
        rig.Ram.Write(Data, "request!"u8);
        ushort head = rig.Add([new(Data, 8, false), new(Data + 0x100, 16, true), new(Data + 0x200, 4, true)]);
        List<VirtqBuffer> buffers = rig.PopAndCollect(out ushort popped);
        Assert.Equal(head, popped);
        Assert.Equal([new VirtqBuffer(Data, 8, false), new VirtqBuffer(Data + 0x100, 16, true), new VirtqBuffer(Data + 0x200, 4, true)], buffers);
        Span<byte> request = stackalloc byte[8];
        rig.Memory.Read(buffers[0].Address, request);
        Assert.True("request!"u8.SequenceEqual(request));
        rig.Memory.Write(buffers[1].Address, "response"u8);
        rig.Device.AddUsed(popped, 8);
        Assert.True(rig.TryGetUsed(out ushort used, out uint length));
        Assert.Equal(head, used);
        Assert.Equal(8u, length);
        Assert.True("response"u8.SequenceEqual(rig.Ram.GetSpan(Data + 0x100, 8)));
        Assert.False(rig.TryGetUsed(out _, out _));
        Assert.Equal(8, rig.Split!.FreeDescriptors);
    }

    [Fact]
    public void IndirectChain_YieldsTableBuffers()
    {
        using var rig = QueueRig.CreateSplit();
        VirtqBuffer[] buffers = [new(Data, 1, false), new(Data + 16, 2, false), new(Data + 32, 3, true)];
        ushort head = rig.Add(buffers, indirect: true);
        Assert.Equal(buffers, rig.PopAndCollect(out ushort popped));
        Assert.Equal(head, popped);
        Assert.Equal(7, rig.Split!.FreeDescriptors);
    }

    [Fact]
    public void DirectDescriptorsFollowedByIndirect_AreAllYielded()
    {
        using var rig = QueueRig.CreateSplit();
        ulong table = rig.Ram.Allocate(32, 16);
        rig.Ram.Write(table, System.Runtime.InteropServices.MemoryMarshal.AsBytes<VirtqDescriptor>(
        [
            new() { Address = Data + 0x10, Length = 5, Flags = VirtqDescriptorFlags.Next, Next = 1 },
            new() { Address = Data + 0x20, Length = 6, Flags = VirtqDescriptorFlags.Write },
        ]));
        rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = 4, Flags = VirtqDescriptorFlags.Next, Next = 3 });
        rig.Split.WriteDescriptor(3, new VirtqDescriptor { Address = table, Length = 32, Flags = VirtqDescriptorFlags.Indirect });
        rig.Split.WriteAvailEntry(0, 0);
        rig.Split.SetAvailIndex(1);
        Assert.Equal([new VirtqBuffer(Data, 4, false), new VirtqBuffer(Data + 0x10, 5, false), new VirtqBuffer(Data + 0x20, 6, true)], rig.PopAndCollect(out _));
    }

    [Fact]
    public void NoEventIdx_NotificationFlags()
    {
        using var rig = QueueRig.CreateSplit();
        rig.Device.DisableNotification();
        rig.Add([new(Data, 1, false)]);
        Assert.False(rig.Split!.NeedsKick());
        Assert.True(rig.Device.EnableNotification());
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Split.NeedsKick());

        rig.Split.DisableInterrupts();
        Assert.False(rig.Device.NeedsNotification());
        Assert.False(rig.Split.EnableInterrupts());
        Assert.True(rig.Device.NeedsNotification());
    }

    [Fact]
    public void EventIdx_AvailEventAndUsedEvent()
    {
        using var rig = QueueRig.CreateSplit(eventIdx: true);
        Assert.False(rig.Device.EnableNotification());
        Assert.Equal(0, rig.Split!.AvailEvent);
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Split.NeedsKick());
        rig.Add([new(Data, 1, false)]);
        Assert.False(rig.Split.NeedsKick());

        rig.Device.TryPopDescriptorChain(out DescriptorChain a);
        rig.Device.TryPopDescriptorChain(out DescriptorChain b);
        Assert.False(rig.Device.EnableNotification());
        Assert.Equal(2, rig.Split.AvailEvent);

        rig.Split.UsedEvent = 1;
        rig.Device.AddUsed(a.Head, 0);
        Assert.True(rig.Device.NeedsNotification());   // first decision after activation always notifies
        rig.Device.AddUsed(b.Head, 0);
        Assert.True(rig.Device.NeedsNotification());   // used moved 1 -> 2, crossing used_event 1
        Assert.False(rig.Device.NeedsNotification());  // nothing new
    }

    [Theory]
    [InlineData(0, 1, 0, true)]
    [InlineData(5, 6, 5, true)]
    [InlineData(5, 5, 4, false)]
    [InlineData(5, 10, 6, false)]
    [InlineData(65535, 0, 65535, true)]
    [InlineData(65535, 2, 65534, true)]
    [InlineData(0, 2, 65534, true)]
    [InlineData(3, 2, 65534, false)]
    [InlineData(65533, 2, 65534, false)]
    [InlineData(7, 7, 7, false)]
    public void NeedEvent_FollowsSpecFormulaAcrossWrap(int eventIndex, int newIndex, int oldIndex, bool expected)
        => Assert.Equal(expected, SplitQueue.NeedEvent((ushort)eventIndex, (ushort)newIndex, (ushort)oldIndex));

    [Fact]
    public void VringBase_SaveRestore()
    {
        using var rig = QueueRig.CreateSplit();
        for (int i = 0; i < 3; i++)
        {
            rig.Add([new(Data, 1, false)]);
            rig.Device.TryPopDescriptorChain(out DescriptorChain c);
            rig.Device.AddUsed(c.Head, 0);
            rig.TryGetUsed(out _, out _);
        }

        Assert.Equal(3u, rig.Device.GetVringBase());
        rig.Device.Deactivate();
        Assert.False(rig.Device.IsReady);
        Assert.Throws<InvalidOperationException>(() => rig.Device.TryPopDescriptorChain(out _));
        rig.Device.SetVringBase(0x10003);
        Assert.Equal(3, rig.SplitDevice.NextAvail);
        Assert.Equal(3, rig.SplitDevice.NextUsed);
        rig.Device.Activate(rig.Memory);
        rig.SplitDevice.SyncNextUsedFromRing();
        Assert.Equal(3, rig.SplitDevice.NextUsed);
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out _));
        Assert.Throws<InvalidOperationException>(() => rig.Device.SetVringBase(0));
        Assert.Throws<InvalidOperationException>(() => rig.Device.Size = 4);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(6)]
    [InlineData(512)]
    public void InvalidSize_Throws(int size)
    {
        var queue = new SplitQueue(256);
        var e = Assert.Throws<VirtqueueException>(() => queue.Size = (ushort)size);
        Assert.Equal(VirtqueueError.InvalidQueueSize, e.Reason);
    }

    [Fact]
    public void Constructor_RejectsBadMaximum()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SplitQueue(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SplitQueue(100));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PackedQueue(40000));
    }

    [Fact]
    public void Activate_RejectsMisalignedOrUnmappedRings()
    {
        using var ram = GuestRam.Create(0x10000, 0x10000);
        using GuestMemory memory = ram.CreateGuestMemory();
        using var queue = new SplitQueue(8) { Size = 8, DescriptorTableAddress = 0x10008, DriverAreaAddress = 0x11000, DeviceAreaAddress = 0x12000 };
        Assert.Equal(VirtqueueError.InvalidRingAddress, Assert.Throws<VirtqueueException>(() => queue.Activate(memory)).Reason);
        queue.DescriptorTableAddress = 0x10000;
        queue.DriverAreaAddress = 0x11001;
        Assert.Equal(VirtqueueError.InvalidRingAddress, Assert.Throws<VirtqueueException>(() => queue.Activate(memory)).Reason);
        queue.DriverAreaAddress = 0x11000;
        queue.DeviceAreaAddress = 0x12002;
        Assert.Equal(VirtqueueError.InvalidRingAddress, Assert.Throws<VirtqueueException>(() => queue.Activate(memory)).Reason);
        queue.DeviceAreaAddress = 0x1fff0;
        var e = Assert.Throws<VirtqueueException>(() => queue.Activate(memory));
        Assert.Equal(VirtqueueError.InvalidRingAddress, e.Reason);
        Assert.Contains("device area", e.Message, StringComparison.Ordinal);
        queue.DeviceAreaAddress = 0x12000;
        queue.Activate(memory);
        Assert.True(queue.IsReady);
        Assert.Throws<InvalidOperationException>(() => queue.Activate(memory));
    }

    [Fact]
    public void UpdateMemory_MakesEarlierChainsStale()
    {
        using var rig = QueueRig.CreateSplit();
        rig.Add([new(Data, 1, false)]);
        rig.Device.TryPopDescriptorChain(out DescriptorChain chain);
        using GuestMemory fresh = rig.Ram.CreateGuestMemory();
        rig.Device.UpdateMemory(fresh);
        Assert.Same(fresh, rig.Device.Memory);
        Assert.Equal(VirtqueueError.StaleChain, Assert.Throws<VirtqueueException>(() => chain.GetEnumerator()).Reason);
        rig.Device.AddUsed(chain.Head, 0);
        Assert.True(rig.TryGetUsed(out _, out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MemoryChangeDuringEnumeration_StopsIt(bool packed)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked() : QueueRig.CreateSplit();
        rig.Add([new(Data, 1, false), new(Data + 8, 1, false)]);
        rig.Device.TryPopDescriptorChain(out DescriptorChain chain);
        DescriptorChainEnumerator e = chain.GetEnumerator();
        Assert.True(e.MoveNext());
        rig.Device.Deactivate();
        Assert.Equal(VirtqueueError.StaleChain, Assert.Throws<VirtqueueException>(() => e.MoveNext()).Reason);
    }

    [Fact]
    public void UpdateMemory_WithoutTheRings_DeactivatesTheQueue()
    {
        using var rig = QueueRig.CreateSplit();
        using var other = GuestRam.Create(0x1000, 0x9000000);
        using GuestMemory elsewhere = other.CreateGuestMemory();
        Assert.Equal(VirtqueueError.InvalidRingAddress, Assert.Throws<VirtqueueException>(() => rig.Device.UpdateMemory(elsewhere)).Reason);
        Assert.False(rig.Device.IsReady);
    }

    [Fact]
    public void AddUsed_BadHead_Throws()
    {
        using var rig = QueueRig.CreateSplit();
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Device.AddUsed(8, 0));
    }

    [Fact]
    public void UsedRingWrites_AreDirtyLogged_AtTheRingLogAddress_OnlyWhenRingLoggingIsOn()
    {
        using var ram = GuestRam.Create(QueueRig.RamSize, QueueRig.RamBase);
        using SafeFileHandle logFd = TestHelpers.MemFd(4096);
        using var log = DirtyLog.Map(logFd, 0, 4096);
        using var rig = QueueRig.CreateSplit(eventIdx: true, ram: ram, log: log);

        // Ring logging off (no VHOST_VRING_F_LOG): the buffer is logged, the used ring is not.
        rig.Add([new(Data, 8, true)]);
        rig.Device.TryPopDescriptorChain(out DescriptorChain first);
        rig.Memory.Write(Data, new byte[8]);
        rig.Device.AddUsed(first.Head, 8);
        for (ulong page = 0; page < log.PageCount; page++)
        {
            Assert.Equal(page == Data / DirtyLog.PageSize, log.IsDirty(page));
        }

        // Ring logging on at the used ring's own address (what QEMU sends).
        rig.Device.RingLogAddress = rig.Split!.UsedRingAddress;
        rig.Add([new(Data, 8, true)]);
        rig.Device.TryPopDescriptorChain(out DescriptorChain chain);
        foreach (VirtqBuffer b in chain)
        {
            rig.Memory.Write(b.Address, new byte[b.Length]);
        }

        rig.Device.AddUsed(chain.Head, 8);
        rig.Device.EnableNotification();
        ulong usedPage = rig.Split.UsedRingAddress / DirtyLog.PageSize;
        ulong availEventPage = (rig.Split.UsedRingAddress + 4 + (8 * 8)) / DirtyLog.PageSize;
        var expected = new HashSet<ulong> { usedPage, availEventPage, Data / DirtyLog.PageSize };
        for (ulong page = 0; page < log.PageCount; page++)
        {
            Assert.Equal(expected.Contains(page), log.IsDirty(page));
        }
    }
}
