using System.Buffers.Binary;
using Vhost.User.Messages;
using VhostUserBackend.Iommu;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.Fuzz;

/// <summary>
/// `iotlb`: a sequence of IOTLB updates, invalidations and translations against the daemon's
/// device IOTLB over two guest memory regions with a hole between them. After every operation
/// the entries must be sorted, disjoint and at most <see cref="Iotlb.Capacity"/>; every
/// translation must land wholly in guest memory, cover 1..length bytes, and agree with the entry
/// that maps its first byte.
/// </summary>
/// <remarks>
/// Input: records of 26 bytes (a short last one is zero-padded): op (bits 0-2: 0 update, 1
/// invalidate, 2 translate for read, 3 translate for write, 4 ring-area translation; bit 7: small
/// addresses, so entries overlap and hit guest memory), IOVA (8), size (8), user address (8;
/// with bit 7 an offset from the RAM's user address), permission (1). Misses have no back-end
/// channel to go to and fail at once. Allowed: <see cref="ArgumentException"/> (a range the
/// dispatcher would refuse) and <see cref="VirtqueueException"/> (a translation that fails).
/// </remarks>
internal static class IotlbTarget
{
    private const int Record = 26;
    private const ulong RegionA = 0x10000;
    private const ulong RegionBAddress = 0x20000;
    private const ulong RegionB = 0x4000;

    public static void Run(ReadOnlySpan<byte> input)
    {
        using GuestRam ram = GuestRam.Create([(0, RegionA), (RegionBAddress, RegionB)]);
        var regions = new List<GuestMemoryRegion>();
        foreach (GuestRamRegion r in ram.Regions)
        {
            regions.Add(GuestMemoryRegion.Map(ram.FileHandle, r.FileOffset, r.Size, r.GuestPhysicalAddress, r.UserAddress));
        }

        using GuestMemory memory = GuestMemory.Create(regions);
        ulong user = ram.Regions[0].UserAddress;
        var tlb = new Iotlb { MissTimeout = TimeSpan.FromMilliseconds(1) };
        Exception? last = null;
        byte[] record = new byte[Record];
        for (int at = 0; at < Math.Max(input.Length, 1); at += Record)
        {
            Array.Clear(record);
            input.Slice(at, Math.Min(Record, input.Length - at)).CopyTo(record);
            try
            {
                Step(tlb, memory, user, record);
            }
            catch (Exception e) when (e is ArgumentException or VirtqueueException)
            {
                last = e;
            }

            CheckEntries(tlb);
        }

        if (last is not null)
        {
            throw last;
        }
    }

    private static void Step(Iotlb tlb, GuestMemory memory, ulong user, ReadOnlySpan<byte> r)
    {
        byte op = r[0];
        bool small = (op & 0x80) != 0;
        ulong iova = BinaryPrimitives.ReadUInt64LittleEndian(r[1..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(r[9..]);
        ulong address = BinaryPrimitives.ReadUInt64LittleEndian(r[17..]);
        var permission = (VhostIotlbAccess)(r[25] & 3);
        if (small)
        {
            iova &= 0xf_ffff;
            size = (size & 0xffff) + 1;
            address = user + (address & 0x3_ffff);
        }

        switch (op & 7)
        {
            case 0:
                tlb.Update(iova, size, address, permission);
                break;
            case 1:
                tlb.Invalidate(iova, size);
                break;
            case 2:
            case 3:
                Translate(tlb, memory, iova, Math.Min(size, 1UL << 20), write: (op & 7) == 3);
                break;
            default:
                if (tlb.TryTranslateArea(iova, size, permission, out ulong area, out ulong fault) == Iotlb.Fault.None)
                {
                    Check(tlb.TryFind(iova, out Iotlb.Entry e) && e.UserAddress + (iova - e.Iova) == area, "a ring area translated to another user address than its first entry says");
                }
                else if (size != 0 && iova <= ulong.MaxValue - (size - 1))
                {
                    Check(fault >= iova && fault - iova < size, "a ring area's fault lies outside the area");
                }

                break;
        }
    }

    private static void Translate(Iotlb tlb, GuestMemory memory, ulong iova, ulong length, bool write)
    {
        if (length == 0 || iova > ulong.MaxValue - (length - 1))
        {
            return;
        }

        ulong gpa = tlb.Translate(memory, iova, length, write, out ulong run);
        Check(run >= 1 && run <= length, $"a run of {run} bytes for {length} asked");
        Check(memory.IsRangeMapped(gpa, run), $"translation [0x{gpa:x}, +0x{run:x}) is not guest memory");
        Check(tlb.TryFind(iova, out Iotlb.Entry e), "a translation without an entry");
        Check((e.Permission & (write ? VhostIotlbAccess.WriteOnly : VhostIotlbAccess.ReadOnly)) != 0, "a translation without the permission");
        Check(memory.TryTranslateUserAddress(e.UserAddress + (iova - e.Iova), out ulong expected, out _) && expected == gpa, "a translation that disagrees with its entry");
    }

    private static void CheckEntries(Iotlb tlb)
    {
        ReadOnlySpan<Iotlb.Entry> entries = tlb.Entries;
        Check(entries.Length <= Iotlb.Capacity, $"{entries.Length} entries, above the capacity");
        for (int i = 0; i < entries.Length; i++)
        {
            Check(entries[i].Last >= entries[i].Iova, "an entry ends before it starts");
            Check(i == 0 || entries[i - 1].Last < entries[i].Iova, "entries overlap or are out of order");
        }
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new FuzzContractException("iotlb: " + what);
        }
    }
}
