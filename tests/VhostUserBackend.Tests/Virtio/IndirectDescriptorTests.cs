using System.Runtime.InteropServices;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>Indirect tables the spec allows: a WRITE flag on the referring descriptor (ignored), a table across two adjacent regions.</summary>
public sealed class IndirectDescriptorTests
{
    private const ulong RegionSize = 2 << 20;
    private const ulong Boundary = QueueRig.RamBase + RegionSize;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheWriteFlagOfTheDescriptorReferringToATable_IsIgnored(bool packed)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(4) : QueueRig.CreateSplit(8);
        ulong data = QueueRig.RamBase + 0x200000;
        ulong table = rig.Ram.Allocate(32, 16);
        WriteTable(rig, table, packed, (data, 8, false), (data + 0x100, 16, true));
        Plant(rig, packed, table, 32, VirtqDescriptorFlags.Indirect | VirtqDescriptorFlags.Write);

        List<VirtqBuffer> buffers = Walk(rig);
        Assert.Equal([new VirtqBuffer(data, 8, false), new VirtqBuffer(data + 0x100, 16, true)], buffers);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnIndirectTableAcrossTwoAdjacentRegions_IsValid(bool packed)
    {
        // Two regions, separately mapped, adjacent in guest physical memory; the table's first
        // entry is the last 16 bytes of the first region, the second entry starts the next one.
        var ram = GuestRam.Create([(QueueRig.RamBase, RegionSize), (Boundary, RegionSize)]);
        using QueueRig rig = packed ? QueueRig.CreatePacked(4, ram: ram) : QueueRig.CreateSplit(8, ram: ram);
        Assert.Equal(2, rig.Memory.Regions.Count);
        ulong table = Boundary - 16;
        ulong data = Boundary + 0x1000;
        WriteTable(rig, table, packed, (data, 8, false), (data + 0x100, 16, true), (data + 0x200, 4, true));
        Plant(rig, packed, table, 48, VirtqDescriptorFlags.Indirect);

        List<VirtqBuffer> buffers = Walk(rig);
        Assert.Equal([new VirtqBuffer(data, 8, false), new VirtqBuffer(data + 0x100, 16, true), new VirtqBuffer(data + 0x200, 4, true)], buffers);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnIndirectTableRunningPastGuestMemory_IsStillRefused(bool packed)
    {
        var ram = GuestRam.Create([(QueueRig.RamBase, RegionSize), (Boundary, RegionSize)]);
        using QueueRig rig = packed ? QueueRig.CreatePacked(4, ram: ram) : QueueRig.CreateSplit(8, ram: ram);
        Plant(rig, packed, Boundary + RegionSize - 16, 32, VirtqDescriptorFlags.Indirect);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        var e = Assert.Throws<VirtqueueException>(() =>
        {
            foreach (VirtqBuffer b in chain)
            {
                _ = b;
            }
        });
        Assert.Equal(VirtqueueError.IndirectTableNotMapped, e.Reason);
    }

    private static void WriteTable(QueueRig rig, ulong table, bool packed, params (ulong Address, uint Length, bool Write)[] entries)
    {
        for (int i = 0; i < entries.Length; i++)
        {
            (ulong address, uint length, bool write) = entries[i];
            VirtqDescriptorFlags flags = write ? VirtqDescriptorFlags.Write : 0;
            if (packed)
            {
                var d = new PackedDescriptor { Address = address, Length = length, Flags = flags };
                rig.Ram.Write(table + ((ulong)i * 16), MemoryMarshal.AsBytes(new ReadOnlySpan<PackedDescriptor>(in d)));
            }
            else
            {
                var d = new VirtqDescriptor { Address = address, Length = length, Flags = flags | (i + 1 < entries.Length ? VirtqDescriptorFlags.Next : 0), Next = (ushort)(i + 1) };
                rig.Ram.Write(table + ((ulong)i * 16), MemoryMarshal.AsBytes(new ReadOnlySpan<VirtqDescriptor>(in d)));
            }
        }
    }

    /// <summary>Makes descriptor 0 (the ring's first slot) the one referring to the table, and publishes it.</summary>
    private static void Plant(QueueRig rig, bool packed, ulong table, uint length, VirtqDescriptorFlags flags)
    {
        if (packed)
        {
            rig.Packed!.WriteDescriptor(0, new PackedDescriptor { Address = table, Length = length, Flags = PackedQueueDriver.AvailBits(true) | flags });
            return;
        }

        rig.Split!.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = length, Flags = flags });
        ushort idx = rig.Split.AvailIndex;
        rig.Split.WriteAvailEntry((ushort)(idx & 7), 0);
        rig.Split.SetAvailIndex((ushort)(idx + 1));
    }

    private static List<VirtqBuffer> Walk(QueueRig rig)
    {
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        var buffers = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            buffers.Add(b);
        }

        return buffers;
    }
}
