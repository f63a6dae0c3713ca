using System.Runtime.InteropServices;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>One test per hostile split-ring case: each yields its own error, and the queue (and the others) keep serving.</summary>
public sealed class HostileSplitGuestTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;
    private const ushort Size = 8;

    private static void Publish(QueueRig rig, ushort head)
    {
        ushort idx = rig.Split!.AvailIndex;
        rig.Split.WriteAvailEntry((ushort)(idx & (Size - 1)), head);
        rig.Split.SetAvailIndex((ushort)(idx + 1));
    }

    private static ulong Table(QueueRig rig, params VirtqDescriptor[] entries)
    {
        ulong table = rig.Ram.Allocate((ulong)Math.Max(16, entries.Length * 16), 16);
        rig.Ram.Write(table, MemoryMarshal.AsBytes(entries.AsSpan()));
        return table;
    }

    /// <summary>Writes a hostile chain at head 0, expects <paramref name="reason"/>, returns it as used, then checks a good chain still goes through.</summary>
    private static void ExpectChainError(VirtqueueError reason, Action<QueueRig> plant, bool indirect = true)
    {
        using var rig = QueueRig.CreateSplit(Size, maxIndirect: indirect ? 8 : 0);
        plant(rig);
        Publish(rig, 0);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        var e = Assert.Throws<VirtqueueException>(() =>
        {
            foreach (VirtqBuffer b in chain)
            {
                _ = b;
            }
        });
        Assert.Equal(reason, e.Reason);
        rig.Device.AddUsed(chain.Head, 0);

        // The queue keeps serving: a well-formed chain pops normally.
        rig.Split!.WriteDescriptor(5, new VirtqDescriptor { Address = Data, Length = 4 });
        Publish(rig, 5);
        Assert.Equal([new VirtqBuffer(Data, 4, false)], rig.PopAndCollect(out ushort head));
        Assert.Equal(5, head);
    }

    [Fact]
    public void DescriptorLoop()
        => ExpectChainError(VirtqueueError.DescriptorLoop, rig =>
        {
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 1 });
            rig.Split.WriteDescriptor(1, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 0 });
        });

    [Fact]
    public void SelfLoop()
        => ExpectChainError(VirtqueueError.DescriptorLoop, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 0 }));

    [Fact]
    public void LoopInsideIndirectTable()
        => ExpectChainError(VirtqueueError.DescriptorLoop, rig =>
        {
            ulong table = Table(
                rig,
                new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 1 },
                new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 0 });
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = 32, Flags = VirtqDescriptorFlags.Indirect });
        });

    [Fact]
    public void ChainLongerThanQueueSize()
        => ExpectChainError(VirtqueueError.ChainTooLong, rig =>
        {
            var entries = new VirtqDescriptor[Size + 1];
            for (int i = 0; i < entries.Length; i++)
            {
                entries[i] = new VirtqDescriptor { Address = Data, Length = 1, Flags = i < Size ? VirtqDescriptorFlags.Next : 0, Next = (ushort)(i + 1) };
            }

            ulong table = Table(rig, entries);
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = (uint)(entries.Length * 16), Flags = VirtqDescriptorFlags.Indirect });
        });

    [Fact]
    public void NextIndexOutOfRange()
        => ExpectChainError(VirtqueueError.NextIndexOutOfRange, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = Size }));

    [Fact]
    public void IndirectNextIndexOutOfRange()
        => ExpectChainError(VirtqueueError.NextIndexOutOfRange, rig =>
        {
            ulong table = Table(rig, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Next, Next = 1 });
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = 16, Flags = VirtqDescriptorFlags.Indirect });
        });

    [Theory]
    [InlineData(24u)]
    [InlineData(8u)]
    [InlineData(0u)]
    [InlineData((65536u * 16) + 16)]
    public void IndirectTableLengthInvalid(uint length)
        => ExpectChainError(VirtqueueError.InvalidIndirectTableLength, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = length, Flags = VirtqDescriptorFlags.Indirect }));

    [Fact]
    public void NestedIndirect()
        => ExpectChainError(VirtqueueError.NestedIndirect, rig =>
        {
            ulong inner = Table(rig, new VirtqDescriptor { Address = Data, Length = 1 });
            ulong outer = Table(rig, new VirtqDescriptor { Address = inner, Length = 16, Flags = VirtqDescriptorFlags.Indirect });
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = outer, Length = 16, Flags = VirtqDescriptorFlags.Indirect });
        });

    [Fact]
    public void IndirectWithNextFlag()
        => ExpectChainError(VirtqueueError.IndirectWithNextFlag, rig =>
        {
            ulong table = Table(rig, new VirtqDescriptor { Address = Data, Length = 1 });
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = 16, Flags = VirtqDescriptorFlags.Indirect | VirtqDescriptorFlags.Next, Next = 1 });
        });

    [Fact]
    public void IndirectWithoutTheFeature()
        => ExpectChainError(
            VirtqueueError.IndirectNotNegotiated,
            rig =>
            {
                ulong table = Table(rig, new VirtqDescriptor { Address = Data, Length = 1 });
                rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = 16, Flags = VirtqDescriptorFlags.Indirect });
            },
            indirect: false);

    [Fact]
    public void IndirectTableOutsideMemory()
        => ExpectChainError(VirtqueueError.IndirectTableNotMapped, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = 0x10, Length = 16, Flags = VirtqDescriptorFlags.Indirect }));

    [Fact]
    public void IndirectTableStraddlingTheEndOfMemory()
        => ExpectChainError(VirtqueueError.IndirectTableNotMapped, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = QueueRig.RamBase + QueueRig.RamSize - 16, Length = 32, Flags = VirtqDescriptorFlags.Indirect }));

    [Fact]
    public void BufferOutsideEveryRegion()
        => ExpectChainError(VirtqueueError.BufferNotMapped, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = 0x1000, Length = 16 }));

    [Fact]
    public void BufferWrappingPast2To64()
        => ExpectChainError(VirtqueueError.BufferAddressOverflow, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = ulong.MaxValue - 10, Length = 100 }));

    [Fact]
    public void BufferStraddlingARegionEdgeIntoAHole()
        => ExpectChainError(VirtqueueError.BufferNotMapped, rig =>
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = QueueRig.RamBase + QueueRig.RamSize - 8, Length = 16, Flags = VirtqDescriptorFlags.Write }));

    [Fact]
    public void ReadableAfterWritable()
        => ExpectChainError(VirtqueueError.ReadableAfterWritable, rig =>
        {
            rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = Data, Length = 1, Flags = VirtqDescriptorFlags.Write | VirtqDescriptorFlags.Next, Next = 1 });
            rig.Split.WriteDescriptor(1, new VirtqDescriptor { Address = Data, Length = 1 });
        });

    [Fact]
    public void BufferAcrossTwoAdjacentRegions_IsAccepted_AndReadBySplitting()
    {
        using var ram = GuestRam.Create([(QueueRig.RamBase, 0x300000), (QueueRig.RamBase + 0x300000, 0x100000)]);
        using var rig = QueueRig.CreateSplit(Size, ram: ram);
        ulong edge = QueueRig.RamBase + 0x300000;
        ram.Write(edge - 4, "abcd"u8);
        ram.Write(edge, "efgh"u8);
        rig.Add([new(edge - 4, 8, false)]);
        VirtqBuffer b = Assert.Single(rig.PopAndCollect(out _));
        byte[] bytes = new byte[8];
        rig.Memory.Read(b.Address, bytes);
        Assert.Equal("abcdefgh"u8.ToArray(), bytes);
    }

    [Fact]
    public void AvailIndexMovingMoreThanQueueSize()
    {
        using var rig = QueueRig.CreateSplit(Size);
        rig.Split!.SetAvailIndex(Size + 1);
        var e = Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _));
        Assert.Equal(VirtqueueError.AvailIndexOutOfRange, e.Reason);
        Assert.Equal(0, rig.SplitDevice.NextAvail);

        // Going backwards is the same error (u16 distance > size), and the queue recovers when the guest fixes avail.idx.
        rig.Split.SetAvailIndex(65535);
        Assert.Equal(VirtqueueError.AvailIndexOutOfRange, Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _)).Reason);
        rig.Split.SetAvailIndex(0);
        Assert.False(rig.Device.TryPopDescriptorChain(out _));
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out _));
    }

    [Fact]
    public void HeadIndexOutOfRange_IsSkipped()
    {
        using var rig = QueueRig.CreateSplit(Size);
        Publish(rig, Size);
        var e = Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _));
        Assert.Equal(VirtqueueError.HeadIndexOutOfRange, e.Reason);
        Assert.Equal(1, rig.SplitDevice.NextAvail);
        Assert.False(rig.Device.TryPopDescriptorChain(out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(12)]
    public void QueueSizeZeroOrNotAPowerOfTwo(int size)
    {
        using var queue = new SplitQueue(16);
        Assert.Equal(VirtqueueError.InvalidQueueSize, Assert.Throws<VirtqueueException>(() => queue.Size = (ushort)size).Reason);
        Assert.Equal(16, queue.Size);
    }

    [Fact]
    public void AFaultyQueue_DoesNotDisturbAnotherQueue()
    {
        using var ram = GuestRam.Create(QueueRig.RamSize, QueueRig.RamBase);
        using var bad = QueueRig.CreateSplit(Size, ram: ram);
        using var good = QueueRig.CreateSplit(Size, ram: ram);
        bad.Split!.SetAvailIndex(1000);
        Assert.Throws<VirtqueueException>(() => bad.Device.TryPopDescriptorChain(out _));
        good.Add([new(Data, 3, true)]);
        Assert.Equal([new VirtqBuffer(Data, 3, true)], good.PopAndCollect(out ushort head));
        good.Device.AddUsed(head, 3);
        Assert.True(good.TryGetUsed(out _, out uint length));
        Assert.Equal(3u, length);
    }
}
