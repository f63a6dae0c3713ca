using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

public sealed class PackedQueueTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Fact]
    public void DirectChain_RoundTrip()
    {
        using var rig = QueueRig.CreatePacked(size: 5);
        Assert.False(rig.Device.TryPopDescriptorChain(out _));
        ushort id = rig.Add([new(Data, 8, false), new(Data + 0x100, 16, true)]);
        Assert.Equal([new VirtqBuffer(Data, 8, false), new VirtqBuffer(Data + 0x100, 16, true)], rig.PopAndCollect(out ushort popped));
        Assert.Equal(id, popped);
        Assert.Equal(2, rig.PackedDevice.NextAvail);
        rig.Device.AddUsed(popped, 16);
        Assert.True(rig.TryGetUsed(out ushort used, out uint length));
        Assert.Equal((id, 16u), (used, length));
        Assert.Equal(5, rig.Packed!.FreeDescriptors);
    }

    [Fact]
    public void WrapCounters_FlipAtTheEndOfTheRing()
    {
        using var rig = QueueRig.CreatePacked(size: 3);
        for (int i = 0; i < 7; i++)
        {
            ushort id = rig.Add([new(Data, 1, false), new(Data, 1, true)]);
            rig.PopAndCollect(out ushort popped);
            Assert.Equal(id, popped);
            rig.Device.AddUsed(popped, 1);
            Assert.True(rig.TryGetUsed(out ushort used, out _));
            Assert.Equal(id, used);
        }

        // 14 slots of a 3-slot ring: position 2, four laps (wrap flipped 4 times: back to 1).
        Assert.Equal(2, rig.PackedDevice.NextAvail);
        Assert.True(rig.PackedDevice.AvailWrapCounter);
        Assert.Equal(2, rig.PackedDevice.NextUsed);
        Assert.True(rig.PackedDevice.UsedWrapCounter);
    }

    [Fact]
    public void OutOfOrderCompletion_ReturnsSlotsByChainLength()
    {
        using var rig = QueueRig.CreatePacked(size: 4);
        ushort a = rig.Add([new(Data, 1, false), new(Data, 1, false)]);
        ushort b = rig.Add([new(Data, 1, false)]);
        rig.PopAndCollect(out _);
        rig.PopAndCollect(out _);
        rig.Device.AddUsed(b, 7);
        Assert.Equal(1, rig.PackedDevice.NextUsed);
        rig.Device.AddUsed(a, 9);
        Assert.Equal(3, rig.PackedDevice.NextUsed);
        Assert.True(rig.TryGetUsed(out ushort first, out uint l1));
        Assert.True(rig.TryGetUsed(out ushort second, out uint l2));
        Assert.Equal((b, 7u, a, 9u), (first, l1, second, l2));
        Assert.Equal(4, rig.Packed!.FreeDescriptors);
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Device.AddUsed(a, 0));
    }

    [Fact]
    public void ChainIsCopiedAtPop_SoDriverReuseOfSlotsDoesNotChangeIt()
    {
        using var rig = QueueRig.CreatePacked(size: 3);
        ushort a = rig.Add([new(Data, 11, false), new(Data + 0x10, 12, true)]);
        rig.Device.TryPopDescriptorChain(out DescriptorChain chainA);
        ushort b = rig.Add([new(Data + 0x20, 13, false)]);
        rig.PopAndCollect(out _);
        rig.Device.AddUsed(b, 0);
        rig.TryGetUsed(out _, out _);

        // Slot 0 (A's head) now holds B's used descriptor, and the driver may reuse freed slots.
        ushort c = rig.Add([new(Data + 0x30, 14, false)]);
        Assert.NotEqual(a, c);
        var seen = new List<VirtqBuffer>();
        foreach (VirtqBuffer buffer in chainA)
        {
            seen.Add(buffer);
        }

        Assert.Equal([new VirtqBuffer(Data, 11, false), new VirtqBuffer(Data + 0x10, 12, true)], seen);
        rig.Device.AddUsed(a, 12);
        Assert.Equal(VirtqueueError.StaleChain, Assert.Throws<VirtqueueException>(() => chainA.GetEnumerator()).Reason);
    }

    [Fact]
    public void IndirectChain_UsesOneSlot()
    {
        using var rig = QueueRig.CreatePacked(size: 4);
        VirtqBuffer[] buffers = [new(Data, 1, false), new(Data + 16, 2, true), new(Data + 32, 3, true)];
        rig.Add(buffers, indirect: true);
        Assert.Equal(buffers, rig.PopAndCollect(out ushort id));
        Assert.Equal(1, rig.PackedDevice.NextAvail);
        rig.Device.AddUsed(id, 5);
        Assert.True(rig.TryGetUsed(out _, out uint length));
        Assert.Equal(5u, length);
    }

    [Fact]
    public void EventSuppression_BothWays()
    {
        using var rig = QueueRig.CreatePacked(size: 4, eventIdx: false);
        rig.Device.DisableNotification();
        Assert.Equal(PackedEventFlags.Disable, rig.Packed!.DeviceEvent.Flags);
        rig.Add([new(Data, 1, false)]);
        Assert.False(rig.Packed.NeedsKick());
        Assert.True(rig.Device.EnableNotification());
        Assert.Equal(PackedEventFlags.Enable, rig.Packed.DeviceEvent.Flags);
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Packed.NeedsKick());

        rig.Packed.DisableInterrupts();
        rig.Device.TryPopDescriptorChain(out DescriptorChain c);
        rig.Device.AddUsed(c.Head, 0);
        Assert.False(rig.Device.NeedsNotification());
        Assert.True(rig.Packed.EnableInterrupts());
        Assert.True(rig.Device.NeedsNotification());
    }

    [Fact]
    public void EventIdx_DescriptorPositions()
    {
        using var rig = QueueRig.CreatePacked(size: 4, eventIdx: true);
        Assert.False(rig.Device.EnableNotification());
        Assert.Equal(new PackedEventSuppression { OffsetAndWrap = 0x8000, Flags = PackedEventFlags.Descriptor }, rig.Packed!.DeviceEvent);
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Packed.NeedsKick());   // slot 0 (wrap 1) was the one asked for
        rig.Add([new(Data, 1, false)]);
        Assert.False(rig.Packed.NeedsKick());  // slot 1 was not

        rig.Device.TryPopDescriptorChain(out DescriptorChain a);
        rig.Device.TryPopDescriptorChain(out DescriptorChain b);
        Assert.False(rig.Packed.EnableInterrupts());
        Assert.Equal(new PackedEventSuppression { OffsetAndWrap = 0x8000, Flags = PackedEventFlags.Descriptor }, rig.Packed.DriverEvent);
        rig.Device.AddUsed(a.Head, 0);
        Assert.True(rig.Device.NeedsNotification());
        rig.TryGetUsed(out _, out _);
        rig.Packed.DriverEvent = new PackedEventSuppression { OffsetAndWrap = 0x8003, Flags = PackedEventFlags.Descriptor };
        rig.Device.AddUsed(b.Head, 0);
        Assert.False(rig.Device.NeedsNotification());
    }

    [Theory]
    [InlineData(0x8000, 1, 0, true, true)]
    [InlineData(0x8001, 1, 0, true, false)]
    [InlineData(0x8003, 1, 65535, false, true)]   // two slots used, from slot 3 (wrap 1) to slot 1 (wrap 0): slot 3 of the old lap was written
    [InlineData(0x0000, 1, 65535, false, true)]   // slot 0 of the new lap was written
    [InlineData(0x0001, 1, 65535, false, false)]  // slot 1 of the new lap is next, not written yet
    [InlineData(0x8001, 1, 65533, false, true)]   // a full lap (4 slots) from slot 1: slot 1 of the old lap was written
    [InlineData(0x0001, 1, 65533, false, false)]  // ... but slot 1 of the new lap was not
    public void PackedNeedEvent_HandlesWrap(int offsetAndWrap, int newIndex, int oldIndex, bool usedWrap, bool expected)
        => Assert.Equal(expected, PackedQueue.NeedEvent((ushort)offsetAndWrap, (ushort)newIndex, (ushort)oldIndex, usedWrap, 4));

    [Fact]
    public void VringBase_PackedEncoding()
    {
        using var rig = QueueRig.CreatePacked(size: 3);
        for (int i = 0; i < 2; i++)
        {
            rig.Add([new(Data, 1, false), new(Data, 1, false)]);
            rig.PopAndCollect(out ushort id);
            rig.Device.AddUsed(id, 0);
            Assert.True(rig.TryGetUsed(out _, out _));
        }

        // avail and used at slot 1 after one lap: wrap counters 0.
        Assert.Equal(0x0001_0001u, rig.Device.GetVringBase());
        rig.Device.Deactivate();
        rig.Device.SetVringBase(0x8002_8001);
        Assert.Equal((1, true, 2, true), (rig.PackedDevice.NextAvail, rig.PackedDevice.AvailWrapCounter, rig.PackedDevice.NextUsed, rig.PackedDevice.UsedWrapCounter));
        Assert.Equal(0x8002_8001u, rig.Device.GetVringBase());
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Device.SetVringBase(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Device.SetVringBase(3u << 16));
    }

    [Fact]
    public void PackedSize_NeedNotBeAPowerOfTwo()
    {
        var queue = new PackedQueue(256) { Size = 3 };
        Assert.Equal(3, queue.Size);
        Assert.Equal(VirtqueueError.InvalidQueueSize, Assert.Throws<VirtqueueException>(() => queue.Size = 0).Reason);
        Assert.Equal(VirtqueueError.InvalidQueueSize, Assert.Throws<VirtqueueException>(() => queue.Size = 257).Reason);
    }

    [Fact]
    public void Reset_ClearsState()
    {
        using var rig = QueueRig.CreatePacked(size: 3);
        rig.Add([new(Data, 1, false)]);
        rig.PopAndCollect(out _);
        rig.Device.Reset();
        Assert.False(rig.Device.IsReady);
        Assert.Equal(256, rig.Device.Size);
        Assert.Equal(0x8000_8000u, rig.Device.GetVringBase());
        Assert.Equal(0UL, rig.Device.DescriptorTableAddress);
    }
}
