using System.Runtime.InteropServices;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>Hostile packed-ring cases: each yields its own error and never touches memory outside the mappings.</summary>
public sealed class HostilePackedGuestTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;
    private const ushort Size = 4;
    private static readonly VirtqDescriptorFlags Avail = PackedQueueDriver.AvailBits(true);

    private static ulong Table(QueueRig rig, params PackedDescriptor[] entries)
    {
        ulong table = rig.Ram.Allocate((ulong)Math.Max(16, entries.Length * 16), 16);
        rig.Ram.Write(table, MemoryMarshal.AsBytes(entries.AsSpan()));
        return table;
    }

    private static VirtqueueException Walk(QueueRig rig)
    {
        return Assert.Throws<VirtqueueException>(() =>
        {
            Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
            foreach (VirtqBuffer b in chain)
            {
                _ = b;
            }
        });
    }

    [Fact]
    public void BufferIdOutOfRange()
    {
        using var rig = QueueRig.CreatePacked(Size);
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = Data, Length = 1, Id = Size, Flags = Avail });
        var e = Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _));
        Assert.Equal(VirtqueueError.InvalidBufferId, e.Reason);
        Assert.Equal(0, rig.PackedDevice.NextAvail);
    }

    [Fact]
    public void BufferIdAlreadyInFlight()
    {
        using var rig = QueueRig.CreatePacked(Size);
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = Data, Length = 1, Id = 2, Flags = Avail });
        rig.Packed.WriteDescriptor(1, new PackedDescriptor { Address = Data, Length = 1, Id = 2, Flags = Avail });
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain first));
        Assert.Equal(VirtqueueError.InvalidBufferId, Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _)).Reason);

        // Once the first is returned, the id may be used again.
        rig.Device.AddUsed(first.Head, 0);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain second));
        Assert.Equal(2, second.Head);
    }

    [Fact]
    public void MoreDescriptorsInFlightThanTheQueueSize()
    {
        using var rig = QueueRig.CreatePacked(2);
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = Data, Length = 1, Id = 0, Flags = Avail });
        rig.Packed.WriteDescriptor(1, new PackedDescriptor { Address = Data, Length = 1, Id = 1, Flags = Avail });
        Assert.True(rig.Device.TryPopDescriptorChain(out _));
        Assert.True(rig.Device.TryPopDescriptorChain(out _));

        // The guest re-offers slot 0 for the next lap although nothing was returned.
        rig.Packed.WriteDescriptor(0, new PackedDescriptor { Address = Data, Length = 1, Id = 0, Flags = PackedQueueDriver.AvailBits(false) });
        Assert.Equal(VirtqueueError.TooManyInFlight, Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _)).Reason);
    }

    [Fact]
    public void ChainLongerThanTheRing()
    {
        using var rig = QueueRig.CreatePacked(Size);
        for (ushort i = 0; i < Size; i++)
        {
            rig.Packed!.WriteDescriptor(i, new PackedDescriptor { Address = Data, Length = 1, Flags = Avail | VirtqDescriptorFlags.Next });
        }

        Assert.Equal(VirtqueueError.ChainTooLong, Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _)).Reason);
    }

    [Fact]
    public void ChainContinuingIntoAnUnavailableSlot()
    {
        using var rig = QueueRig.CreatePacked(Size);
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = Data, Length = 1, Flags = Avail | VirtqDescriptorFlags.Next });
        Assert.Equal(VirtqueueError.ChainNotAvailable, Assert.Throws<VirtqueueException>(() => rig.Device.TryPopDescriptorChain(out _)).Reason);
    }

    [Fact]
    public void ChainLongerThanQueueSizeThroughIndirectTable()
    {
        using var rig = QueueRig.CreatePacked(Size);
        var entries = Enumerable.Repeat(new PackedDescriptor { Address = Data, Length = 1 }, Size + 1).ToArray();
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = Table(rig, entries), Length = (Size + 1) * 16, Flags = Avail | VirtqDescriptorFlags.Indirect });
        Assert.Equal(VirtqueueError.ChainTooLong, Walk(rig).Reason);
    }

    [Fact]
    public void NestedIndirect()
    {
        using var rig = QueueRig.CreatePacked(Size);
        ulong table = Table(rig, new PackedDescriptor { Address = Data, Length = 16, Flags = VirtqDescriptorFlags.Indirect });
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = table, Length = 16, Flags = Avail | VirtqDescriptorFlags.Indirect });
        Assert.Equal(VirtqueueError.NestedIndirect, Walk(rig).Reason);
    }

    [Fact]
    public void IndirectTableLengthNotAMultipleOf16()
    {
        using var rig = QueueRig.CreatePacked(Size);
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = Data, Length = 20, Flags = Avail | VirtqDescriptorFlags.Indirect });
        Assert.Equal(VirtqueueError.InvalidIndirectTableLength, Walk(rig).Reason);
    }

    [Fact]
    public void IndirectInTheMiddleOfAChain()
    {
        using var rig = QueueRig.CreatePacked(Size);
        ulong table = Table(rig, new PackedDescriptor { Address = Data, Length = 1 });
        rig.Packed!.WriteDescriptor(1, new PackedDescriptor { Address = Data, Length = 1, Flags = Avail });
        rig.Packed.WriteDescriptor(0, new PackedDescriptor { Address = table, Length = 16, Flags = Avail | VirtqDescriptorFlags.Indirect | VirtqDescriptorFlags.Next });
        Assert.Equal(VirtqueueError.IndirectWithNextFlag, Walk(rig).Reason);
    }

    [Fact]
    public void BufferOutsideMemory_AndWrapping()
    {
        using var rig = QueueRig.CreatePacked(Size);
        rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = 0x10, Length = 1, Flags = Avail });
        rig.Packed.WriteDescriptor(1, new PackedDescriptor { Address = ulong.MaxValue, Length = 2, Id = 1, Flags = Avail });
        Assert.Equal(VirtqueueError.BufferNotMapped, Walk(rig).Reason);
        Assert.Equal(VirtqueueError.BufferAddressOverflow, Walk(rig).Reason);
    }

    [Fact]
    public void DescriptorRingOutsideMemory_FailsActivation()
    {
        using var ram = GuestRam.Create(0x10000, 0x10000);
        using var memory = ram.CreateGuestMemory();
        using var queue = new PackedQueue(256) { Size = 255, DescriptorTableAddress = 0x1f800, DriverAreaAddress = 0x10000, DeviceAreaAddress = 0x10004 };
        Assert.Equal(VirtqueueError.InvalidRingAddress, Assert.Throws<VirtqueueException>(() => queue.Activate(memory)).Reason);
        Assert.False(queue.IsReady);
    }
}
