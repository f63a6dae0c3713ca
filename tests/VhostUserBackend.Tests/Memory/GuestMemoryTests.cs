using VhostUserBackend.Memory;
using VhostUserBackend.Testing;

namespace VhostUserBackend.Tests.Memory;

public sealed class GuestMemoryTests
{
    private const ulong Page = 4096;

    // Two adjacent regions [0x10000, 0x12000) and [0x12000, 0x14000), then a hole, then [0x20000, 0x21000).
    private static GuestRam ThreeRegions() => GuestRam.Create([(0x10000, 2 * Page), (0x12000, 2 * Page), (0x20000, Page)]);

    [Fact]
    public void Regions_AreSortedByGuestPhysicalAddress()
    {
        using var ram = GuestRam.Create([(0x20000, Page), (0x10000, Page)]);
        using GuestMemory memory = ram.CreateGuestMemory();
        Assert.Equal([0x10000UL, 0x20000UL], memory.Regions.Select(r => r.GuestPhysicalAddress));
    }

    [Fact]
    public void GetSpan_InsideOneRegion_AliasesDriverView()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        ram.Write(0x12ff0, "0123456789abcdef"u8);
        Assert.True("0123456789abcdef"u8.SequenceEqual(memory.GetSpan(0x12ff0, 16)));
        memory.GetSpan(0x20000, 4).Fill(0xAB);
        Assert.Equal(0xAB, ram.GetSpan(0x20003, 1)[0]);
    }

    [Fact]
    public void GetSpan_CrossingAdjacentRegions_ThrowsNotContiguous()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        var e = Assert.Throws<GuestMemoryException>(() => memory.GetSpan(0x11ff8, 16));
        Assert.Equal(GuestMemoryError.RangeNotContiguous, e.Reason);
        Assert.Equal(0x11ff8UL, e.Address);
        Assert.Equal(16UL, e.Length);
        Assert.False(memory.TryGetSpan(0x11ff8, 16, out _));
    }

    [Fact]
    public void GetSpan_IntoHole_ThrowsNotMapped()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        Assert.Equal(GuestMemoryError.AddressNotMapped, Assert.Throws<GuestMemoryException>(() => memory.GetSpan(0x13ff8, 16)).Reason);
        Assert.Equal(GuestMemoryError.AddressNotMapped, Assert.Throws<GuestMemoryException>(() => memory.GetSpan(0x0, 1)).Reason);
        Assert.Equal(GuestMemoryError.AddressNotMapped, Assert.Throws<GuestMemoryException>(() => memory.GetSpan(0x21000, 1)).Reason);
        Assert.Equal(GuestMemoryError.AddressOverflow, Assert.Throws<GuestMemoryException>(() => memory.GetSpan(ulong.MaxValue, 2)).Reason);
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.GetSpan(0x10000, -1));
    }

    [Fact]
    public void ReadWrite_SplitAcrossAdjacentRegions()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        byte[] data = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        memory.Write(0x12000 - 100, data);
        byte[] back = new byte[300];
        memory.Read(0x12000 - 100, back);
        Assert.Equal(data, back);
        Assert.Equal(data[..100], ram.GetSpan(0x12000 - 100, 100).ToArray());
        Assert.Equal(data[100..], ram.GetSpan(0x12000, 200).ToArray());

        memory.Write<ulong>(0x11ffc, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, memory.Read<ulong>(0x11ffc));
    }

    [Fact]
    public void ReadWrite_IntoHole_Throws_AndWritesNothing()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        var e = Assert.Throws<GuestMemoryException>(() => memory.Write(0x13ff0, new byte[32]));
        Assert.Equal(GuestMemoryError.AddressNotMapped, e.Reason);
        Assert.Equal(0x13ff0UL, e.Address);
        Assert.Equal(32UL, e.Length);
        Assert.Throws<GuestMemoryException>(() => memory.Read(0x13ff0, new byte[32]));
        Assert.Throws<GuestMemoryException>(() => memory.Read<int>(0x14000));
        Assert.Throws<GuestMemoryException>(() => memory.Write(0x1fffe, 7u));
        Assert.Equal(GuestMemoryError.AddressOverflow, Assert.Throws<GuestMemoryException>(() => memory.Read(ulong.MaxValue - 1, new byte[4])).Reason);
    }

    [Fact]
    public void IsRangeMapped_FollowsAdjacentRegions()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        Assert.True(memory.IsRangeMapped(0x10000, 4 * Page));
        Assert.False(memory.IsRangeMapped(0x10000, (4 * Page) + 1));
        Assert.True(memory.IsRangeMapped(0x20000, Page));
        Assert.False(memory.IsRangeMapped(0x20000, Page + 1));
        Assert.True(memory.IsRangeMapped(0x999999, 0));
        Assert.False(memory.IsRangeMapped(ulong.MaxValue, 2));
    }

    [Fact]
    public void TranslateUserAddress_MapsToGuestPhysical()
    {
        using GuestRam ram = ThreeRegions();
        using GuestMemory memory = ram.CreateGuestMemory();
        GuestRamRegion second = ram.Regions[1];
        Assert.Equal(0x12010UL, memory.TranslateUserAddress(second.UserAddress + 0x10, 16));
        Assert.True(memory.TryTranslateUserAddress(ram.Regions[2].UserAddress, Page, out ulong gpa));
        Assert.Equal(0x20000UL, gpa);
        var e = Assert.Throws<GuestMemoryException>(() => memory.TranslateUserAddress(ram.Regions[2].UserAddress + Page - 4, 8));
        Assert.Equal(GuestMemoryError.UserAddressNotMapped, e.Reason);
        Assert.False(memory.TryTranslateUserAddress(12345, 1, out _));
        Assert.False(memory.TryTranslateUserAddress(ulong.MaxValue, 2, out _));
    }

    [Fact]
    public void WithRegion_WithoutRegion_BuildNewSnapshots()
    {
        using var ram = GuestRam.Create([(0x10000, Page), (0x30000, Page)]);
        GuestMemoryRegion[] regions = ram.MapRegions();
        using GuestMemory one = GuestMemory.Create([regions[0]]);
        using GuestMemory two = one.WithRegion(regions[1]);
        Assert.Single(one.Regions);
        Assert.Equal(2, two.Regions.Count);
        Assert.True(two.Generation > one.Generation);
        using GuestMemory back = two.WithoutRegion(0x10000, Page);
        Assert.Equal(0x30000UL, Assert.Single(back.Regions).GuestPhysicalAddress);
        Assert.Throws<ArgumentException>(() => two.WithoutRegion(0x10000, 2 * Page));
        using GuestMemoryRegion overlapping = ram.MapRegions()[0];
        Assert.Throws<ArgumentException>(() => two.WithRegion(overlapping));
    }

    [Fact]
    public void ReleasedSnapshot_RejectsDerivation()
    {
        using var ram = GuestRam.Create(Page);
        GuestMemory memory = ram.CreateGuestMemory();
        memory.Dispose();
        memory.Dispose();
        Assert.True(memory.IsReleased);
        Assert.False(memory.TryAddReference());
        Assert.Throws<ObjectDisposedException>(() => memory.WithDirtyLog(null));
    }
}
