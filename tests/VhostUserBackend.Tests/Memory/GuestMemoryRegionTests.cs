using VhostUserBackend.Memory;

namespace VhostUserBackend.Tests.Memory;

[Collection("FdCount")]
public sealed unsafe class GuestMemoryRegionTests
{
    private const ulong Page = 4096;

    [Fact]
    public void Map_ValidRegion_ExposesGeometryAndSharesTheFile()
    {
        using var fd = TestHelpers.MemFd(4 * (long)Page);
        Fd.PWrite(fd, "hello"u8, (long)Page);
        using GuestMemory memory = GuestMemory.Create([GuestMemoryRegion.Map(fd, Page, 2 * Page, 0x10000, 0x7f00_0000_0000)]);
        GuestMemoryRegion region = memory.Regions[0];
        Assert.Equal(0x10000UL, region.GuestPhysicalAddress);
        Assert.Equal(2 * Page, region.Size);
        Assert.Equal(0x10000UL + (2 * Page) - 1, region.LastGuestPhysicalAddress);
        Assert.Equal(0x7f00_0000_0000UL, region.UserAddress);
        Assert.Equal(Page, region.MmapOffset);
        Assert.True("hello"u8.SequenceEqual(memory.GetSpan(0x10000, 5)));

        memory.Write(0x10000 + Page, "world"u8);
        Span<byte> back = stackalloc byte[5];
        Fd.PRead(fd, back, 2 * (long)Page);
        Assert.True("world"u8.SequenceEqual(back));
    }

    [Fact]
    public void Map_ZeroSize_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, 0, 0, 0, 0));
        Assert.Contains("empty", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Map_PastEndOfFile_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, 0, 2 * Page, 0, 0));
        Assert.Contains("past the end of the file", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, Page, Page, 0, 0));
        Assert.Contains("past the end of the file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Map_MisalignedOffset_Throws()
    {
        using var fd = TestHelpers.MemFd(2 * (long)Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, 100, Page, 0, 0));
        Assert.Contains("not aligned", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Map_GuestPhysicalWrap_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, 0, Page, ulong.MaxValue - 100, 0));
        Assert.Equal("guestPhysicalAddress", e.ParamName);
    }

    [Fact]
    public void Map_UserAddressWrap_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, 0, Page, 0, ulong.MaxValue - 100));
        Assert.Equal("userAddress", e.ParamName);
    }

    [Fact]
    public void Map_RegionEndingAtTopOfAddressSpace_IsAccepted()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        using GuestMemory memory = GuestMemory.Create([GuestMemoryRegion.Map(fd, 0, Page, ulong.MaxValue - Page + 1, 0)]);
        Assert.Equal(ulong.MaxValue, memory.Regions[0].LastGuestPhysicalAddress);
        memory.Write<ulong>(ulong.MaxValue - 7, 42);
        Assert.Equal(42UL, memory.Read<ulong>(ulong.MaxValue - 7));
        var e = Assert.Throws<GuestMemoryException>(() => memory.Read<ulong>(ulong.MaxValue - 3));
        Assert.Equal(GuestMemoryError.AddressOverflow, e.Reason);
    }

    [Fact]
    public void Map_OffsetTooLarge_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(fd, ulong.MaxValue - Page, Page, 0, 0));
        Assert.Equal("mmapOffset", e.ParamName);
    }

    [Fact]
    public void Map_Socket_Throws()
    {
        using var sock = UnixSocket.Create();
        var e = Assert.Throws<ArgumentException>(() => GuestMemoryRegion.Map(sock, 0, Page, 0, 0));
        Assert.Contains("not a mappable file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Map_ClosedFd_Throws()
    {
        var fd = TestHelpers.MemFd((long)Page);
        fd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => GuestMemoryRegion.Map(fd, 0, Page, 0, 0));
    }

    [Fact]
    public void Create_OverlappingGuestPhysical_Throws_AndCallerKeepsRegions()
    {
        using var fd = TestHelpers.MemFd(4 * (long)Page);
        using var a = GuestMemoryRegion.Map(fd, 0, 2 * Page, 0, 0x100000);
        using var b = GuestMemoryRegion.Map(fd, 2 * Page, 2 * Page, Page, 0x200000);
        var e = Assert.Throws<ArgumentException>(() => GuestMemory.Create([a, b]));
        Assert.Contains("guest physical", e.Message, StringComparison.Ordinal);
        Assert.False(a.IsUnmapped);
        Assert.False(b.IsUnmapped);
    }

    [Fact]
    public void Create_OverlappingUserAddress_Throws()
    {
        using var fd = TestHelpers.MemFd(4 * (long)Page);
        using var a = GuestMemoryRegion.Map(fd, 0, 2 * Page, 0, 0x100000);
        using var b = GuestMemoryRegion.Map(fd, 2 * Page, 2 * Page, 0x10000, 0x100000 + Page);
        var e = Assert.Throws<ArgumentException>(() => GuestMemory.Create([a, b]));
        Assert.Contains("user address", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_SameRegionTwice_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        using var a = GuestMemoryRegion.Map(fd, 0, Page, 0, 0);
        Assert.Throws<ArgumentException>(() => GuestMemory.Create([a, a]));
    }

    [Fact]
    public void Create_DisposedRegion_Throws()
    {
        using var fd = TestHelpers.MemFd((long)Page);
        var a = GuestMemoryRegion.Map(fd, 0, Page, 0, 0);
        a.Dispose();
        Assert.True(a.IsUnmapped);
        Assert.Throws<ObjectDisposedException>(() => GuestMemory.Create([a]));
    }

    [Fact]
    public void Region_UnmappedWhenLastSnapshotReleased_AndNoFdLeaks()
    {
        int before = TestHelpers.OpenFdCount();
        nuint host;
        GuestMemoryRegion region;
        using (var fd = TestHelpers.MemFd(16 * (long)Page))
        {
            region = GuestMemoryRegion.Map(fd, 0, 16 * Page, 0, 0);
            host = (nuint)region.Host;
        }

        Assert.True(TestHelpers.IsMapped(host, 16 * Page));
        GuestMemory memory = GuestMemory.Create([region]);
        GuestMemory second = memory.WithDirtyLog(null);
        memory.Dispose();
        Assert.True(TestHelpers.IsMapped(host, 16 * Page));
        second.Dispose();
        Assert.True(region.IsUnmapped);
        Assert.False(TestHelpers.IsMapped(host, 16 * Page));
        Assert.Equal(before, TestHelpers.OpenFdCount());
    }
}
