using Vhost.User.Messages;
using VhostUserBackend.Iommu;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Iommu;

/// <summary>The device IOTLB: updates replacing what they overlap, invalidations cutting entries, the capacity bound, and translation with permissions and guest contiguity.</summary>
public sealed class IotlbTests
{
    private const VhostIotlbAccess RW = VhostIotlbAccess.ReadWrite;
    private const VhostIotlbAccess RO = VhostIotlbAccess.ReadOnly;

    [Fact]
    public void Update_replaces_the_part_of_older_entries_it_overlaps()
    {
        var tlb = new Iotlb();
        tlb.Update(0x1000, 0x3000, 0x10000, RW);
        tlb.Update(0x2000, 0x1000, 0x90000, RO);
        Assert.Equal(
            [new Iotlb.Entry(0x1000, 0x1fff, 0x10000, RW), new Iotlb.Entry(0x2000, 0x2fff, 0x90000, RO), new Iotlb.Entry(0x3000, 0x3fff, 0x12000, RW)],
            tlb.Entries.ToArray());
    }

    [Fact]
    public void Invalidate_cuts_its_range_out_and_unknown_ranges_change_nothing()
    {
        var tlb = new Iotlb();
        tlb.Update(0x1000, 0x3000, 0x10000, RW);
        tlb.Invalidate(0x1800, 0x1000);
        Assert.Equal([new Iotlb.Entry(0x1000, 0x17ff, 0x10000, RW), new Iotlb.Entry(0x2800, 0x3fff, 0x11800, RW)], tlb.Entries.ToArray());
        tlb.Invalidate(0x100000, 0x1000);
        Assert.Equal(2, tlb.Count);
        tlb.Invalidate(0, ulong.MaxValue);
        Assert.Equal(0, tlb.Count);
    }

    [Fact]
    public void Entries_at_the_top_of_the_address_space_and_wrapping_ranges()
    {
        var tlb = new Iotlb();
        tlb.Update(ulong.MaxValue - 0xfff, 0x1000, 0x1000, RW);
        Assert.True(tlb.TryFind(ulong.MaxValue, out Iotlb.Entry e));
        Assert.Equal(0x1fffUL, e.UserAddress + (ulong.MaxValue - e.Iova));
        Assert.Throws<ArgumentException>(() => tlb.Update(ulong.MaxValue - 0xfff, 0x2000, 0x1000, RW));
        Assert.Throws<ArgumentException>(() => tlb.Update(0, 0x2000, ulong.MaxValue - 0xfff, RW));
        Assert.Throws<ArgumentException>(() => tlb.Update(0, 0, 0, RW));
        Assert.Throws<ArgumentException>(() => tlb.Invalidate(2, ulong.MaxValue));
        tlb.Update(0, ulong.MaxValue, 0, RW);
        Assert.Equal(2, tlb.Count);
    }

    [Fact]
    public void A_storm_of_updates_keeps_at_most_the_capacity()
    {
        var tlb = new Iotlb();
        for (ulong i = 0; i < 3 * Iotlb.Capacity; i++)
        {
            tlb.Update(i * 0x1000, 0x1000, 0x100000 + (i * 0x1000), RW);
        }

        Assert.Equal(Iotlb.Capacity, tlb.Count);
        Iotlb.Entry[] entries = tlb.Entries.ToArray();
        for (int i = 1; i < entries.Length; i++)
        {
            Assert.True(entries[i - 1].Last < entries[i].Iova);
        }
    }

    [Fact]
    public void Translate_merges_guest_contiguous_entries_and_splits_where_guest_addresses_jump()
    {
        using GuestRam ram = GuestRam.Create(1 << 20);
        using GuestMemory memory = Memory(ram);
        ulong user = ram.Regions[0].UserAddress;
        var tlb = new Iotlb();

        // IOVA pages 0x10000 and 0x11000 are guest pages 0x3000 and 0x4000 (contiguous); 0x12000 is 0x8000.
        tlb.Update(0x10000, 0x1000, user + 0x3000, RW);
        tlb.Update(0x11000, 0x1000, user + 0x4000, RW);
        tlb.Update(0x12000, 0x1000, user + 0x8000, RO);
        Assert.Equal(0x3800UL, tlb.Translate(memory, 0x10800, 0x2000, write: true, out ulong run));
        Assert.Equal(0x1800UL, run);
        Assert.Equal(0x8000UL, tlb.Translate(memory, 0x12000, 0x800, write: false, out run));
        Assert.Equal(0x800UL, run);
        VirtqueueException denied = Assert.Throws<VirtqueueException>(() => tlb.Translate(memory, 0x12000, 0x10, write: true, out _));
        Assert.Equal(VirtqueueError.IotlbAccessDenied, denied.Reason);

        // Outside guest memory, and a miss with nobody to ask.
        tlb.Update(0x20000, 0x1000, user + (2 << 20), RW);
        Assert.Equal(VirtqueueError.IotlbNotGuestMemory, Assert.Throws<VirtqueueException>(() => tlb.Translate(memory, 0x20000, 1, write: false, out _)).Reason);
        Assert.Equal(VirtqueueError.IotlbMiss, Assert.Throws<VirtqueueException>(() => tlb.Translate(memory, 0x30000, 1, write: false, out _)).Reason);
    }

    [Fact]
    public void A_miss_is_sent_once_and_the_waiting_translation_resumes_on_the_update_or_fails_at_the_bound()
    {
        using GuestRam ram = GuestRam.Create(1 << 20);
        using GuestMemory memory = Memory(ram);
        ulong user = ram.Regions[0].UserAddress;
        var tlb = new Iotlb { MissTimeout = TimeSpan.FromSeconds(5) };
        var misses = new List<(ulong, VhostIotlbAccess)>();
        tlb.MissSender = (iova, access) =>
        {
            lock (misses)
            {
                misses.Add((iova, access));
            }

            // The front-end answers from another thread, as QEMU does on the main connection.
            ThreadPool.QueueUserWorkItem(_ => tlb.Update(iova & ~0xfffUL, 0x1000, user + 0x5000, RW));
        };
        Assert.Equal(0x5123UL, tlb.Translate(memory, 0x40123, 0x10, write: true, out ulong run));
        Assert.Equal(0x10UL, run);
        Assert.Equal([(0x40123UL, VhostIotlbAccess.WriteOnly)], misses);

        var silent = new Iotlb { MissTimeout = TimeSpan.FromMilliseconds(100), MissSender = (_, _) => { } };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(VirtqueueError.IotlbMiss, Assert.Throws<VirtqueueException>(() => silent.Translate(memory, 0x1000, 1, write: false, out _)).Reason);
        Assert.InRange(clock.ElapsedMilliseconds, 90, 3000);
    }

    [Fact]
    public void Ring_areas_must_translate_to_contiguous_user_addresses_with_their_permission()
    {
        var tlb = new Iotlb();
        tlb.Update(0x1000, 0x1000, 0x50000, RW);
        tlb.Update(0x2000, 0x1000, 0x51000, RO);
        tlb.Update(0x3000, 0x1000, 0x90000, RW);
        Assert.Equal(Iotlb.Fault.None, tlb.TryTranslateArea(0x1800, 0x1000, RO, out ulong user, out _));
        Assert.Equal(0x50800UL, user);
        Assert.Equal(Iotlb.Fault.AccessDenied, tlb.TryTranslateArea(0x1800, 0x1000, VhostIotlbAccess.WriteOnly, out _, out ulong at));
        Assert.Equal(0x2000UL, at);
        Assert.Equal(Iotlb.Fault.NotGuestMemory, tlb.TryTranslateArea(0x2800, 0x1000, RO, out _, out _));
        Assert.Equal(Iotlb.Fault.Miss, tlb.TryTranslateArea(0x3800, 0x1000, RO, out _, out at));
        Assert.Equal(0x4000UL, at);
    }

    private static GuestMemory Memory(GuestRam ram)
    {
        GuestRamRegion r = ram.Regions[0];
        return GuestMemory.Create([GuestMemoryRegion.Map(ram.FileHandle, r.FileOffset, r.Size, r.GuestPhysicalAddress, r.UserAddress)]);
    }
}
