using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// SHMEM_MAP / SHMEM_UNMAP through the daemon: a device maps a memfd into its VIRTIO shared memory
/// region with <see cref="VhostUserShmemMapper"/> over the back-end channel, and our front-end,
/// with <see cref="VhostUserShmemRegions"/>, maps it into the region's reservation and sees the bytes.
/// </summary>
public sealed class DaemonShmemMapTests
{
    private const VhostUserProtocolFeatures Shmem = VhostUserProtocolFeatures.BackendRequest | VhostUserProtocolFeatures.Shmem | VhostUserProtocolFeatures.BackendSendFd;
    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    [Fact]
    public unsafe void A_device_maps_a_memfd_the_frontend_sees_its_bytes_both_ways_then_unmaps_it()
    {
        using var setup = Setup(out VhostUserShmemRegions regions, out VhostUserShmemMapper mapper, out FrontendShmemHandler handler);
        using SafeFileHandle memfd = TestHelpers.MemFd((long)(4 * Page));
        byte[] hello = "hello from the device"u8.ToArray();
        Fd.PWrite(memfd, hello, (long)Page);

        // Pages 1-2 of the memfd at offset 2 pages of region 0.
        mapper.Map(0, 2 * Page, memfd, Page, 2 * Page, writable: true);
        Assert.Equal([(0, 2 * Page, 2 * Page)], regions.Mappings);
        byte* at = (byte*)regions.BaseAddress(0) + (2 * Page);
        Assert.Equal(hello, new ReadOnlySpan<byte>(at, hello.Length).ToArray());

        // Shared both ways: the device's later write, the front-end's (the guest's) write.
        Fd.PWrite(memfd, "again"u8, (long)(2 * Page));
        Assert.Equal("again"u8.ToArray(), new ReadOnlySpan<byte>(at + Page, 5).ToArray());
        "guest"u8.CopyTo(new Span<byte>(at + 100, 5));
        var back = new byte[5];
        Fd.PRead(memfd, back, (long)Page + 100);
        Assert.Equal("guest"u8.ToArray(), back);

        mapper.Unmap(0, 2 * Page, 2 * Page);
        Assert.Empty(regions.Mappings);
        Assert.Equal(0, mapper.Count);
        Assert.Equal(2, handler.Requests);
    }

    [Theory]
    [InlineData(0, 7, 0, 2, "beyond")] // offset 7 pages + 2 pages > the 8-page region
    [InlineData(0, 0, 0, 9, "beyond")]
    [InlineData(1, 0, 0, 1, "beyond")] // region 1 is 2 pages: offset 2 pages is out
    [InlineData(2, 0, 0, 1, "not configured")]
    [InlineData(0, 0, 0, 0, "multiples")]
    public void Shmem_maps_beyond_the_region_or_misaligned_are_refused_before_anything_is_sent(byte shmId, ulong offsetPages, ulong fdPages, ulong lengthPages, string reason)
    {
        using var setup = Setup(out VhostUserShmemRegions regions, out VhostUserShmemMapper mapper, out FrontendShmemHandler handler);
        using SafeFileHandle memfd = TestHelpers.MemFd((long)(16 * Page));
        ulong offset = shmId == 1 ? 2 * Page : offsetPages * Page;
        var e = Assert.Throws<ArgumentException>(() => mapper.Map(shmId, offset, memfd, fdPages * Page, lengthPages * Page, writable: false));
        Assert.Contains(reason, e.Message);
        Assert.Equal(0, handler.Requests);
        Assert.Empty(regions.Mappings);
    }

    [Fact]
    public void Overflow_misalignment_overlap_and_partial_unmap_are_refused_by_the_device_side()
    {
        using var setup = Setup(out VhostUserShmemRegions regions, out VhostUserShmemMapper mapper, out FrontendShmemHandler handler);
        using SafeFileHandle memfd = TestHelpers.MemFd((long)(4 * Page));
        Assert.Throws<ArgumentException>(() => mapper.Map(0, ulong.MaxValue - Page + 1, memfd, 0, 2 * Page, false));
        Assert.Throws<ArgumentException>(() => mapper.Map(0, 1, memfd, 0, Page, false));
        Assert.Throws<ArgumentException>(() => mapper.Map(0, 0, memfd, 1, Page, false));
        Assert.Equal(0, handler.Requests);

        mapper.Map(0, Page, memfd, 0, 2 * Page, false);
        Assert.Contains("overlaps", Assert.Throws<ArgumentException>(() => mapper.Map(0, 2 * Page, memfd, 0, Page, false)).Message);
        Assert.Contains("whole mapping", Assert.Throws<ArgumentException>(() => mapper.Unmap(0, Page, Page)).Message);
        Assert.Equal(1, handler.Requests);
        Assert.Single(regions.Mappings);
    }

    [Fact]
    public void The_frontend_refuses_a_map_beyond_the_region_from_a_backend_that_skips_the_checks()
    {
        using var setup = Setup(out VhostUserShmemRegions regions, out _, out FrontendShmemHandler handler);
        using SafeFileHandle memfd = TestHelpers.MemFd((long)(4 * Page));
        VhostUserBackendChannel channel = setup.Device.Channel!;

        // Straight on the channel: past the 8-page region, over a file too short, an unmapped unmap.
        Assert.Throws<VhostUserPeerRefusedException>(() => channel.ShmemMap(new VhostUserShmemMap { ShmemId = 0, ShmemOffset = 7 * Page, Length = 2 * Page }, memfd));
        Assert.Throws<VhostUserPeerRefusedException>(() => channel.ShmemMap(new VhostUserShmemMap { ShmemId = 0, ShmemOffset = 0, FdOffset = 2 * Page, Length = 4 * Page }, memfd));
        Assert.Throws<VhostUserPeerRefusedException>(() => channel.ShmemUnmap(new VhostUserShmemMap { ShmemId = 0, ShmemOffset = 0, Length = Page }));
        Assert.Equal(3, handler.Requests);
        Assert.Empty(regions.Mappings);

        // The channel still works.
        channel.ShmemMap(new VhostUserShmemMap { ShmemId = 1, ShmemOffset = 0, Length = 2 * Page }, memfd);
        Assert.Single(regions.Mappings);
        regions.Clear();
        Assert.Empty(regions.Mappings);
    }

    /// <summary>A daemon whose device has two regions (8 and 2 pages), our front-end with the regions reserved and a handler that maps into them.</summary>
    private static ShmemRig Setup(out VhostUserShmemRegions regions, out VhostUserShmemMapper mapper, out FrontendShmemHandler handler)
    {
        var config = new VhostUserShmemConfig { RegionCount = 2 };
        config.MemorySizes[0] = 8 * Page;
        config.MemorySizes[1] = 2 * Page;
        var device = new CopyDevice { ExtraProtocolFeatures = Shmem, Shmem = config };
        var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, Shmem);
        regions = new VhostUserShmemRegions(f.GetShmemConfig());
        handler = new FrontendShmemHandler(regions);
        f.SetBackendRequestFd(handler);
        mapper = new VhostUserShmemMapper(device.Channel!, config);
        return new ShmemRig(rig, regions);
    }

    private sealed class ShmemRig(DaemonRig rig, VhostUserShmemRegions regions) : IDisposable
    {
        public CopyDevice Device => rig.Device;

        public void Dispose()
        {
            rig.Dispose();
            regions.Dispose();
        }
    }

    /// <summary>A VMM's handler: SHMEM_MAP / SHMEM_UNMAP into the reserved regions.</summary>
    private sealed class FrontendShmemHandler(VhostUserShmemRegions regions) : IVhostUserFrontendRequestHandler
    {
        private int _requests;

        public int Requests => Volatile.Read(ref _requests);

        public void ShmemMap(in VhostUserShmemMap map, ReceivedFds fds)
        {
            Interlocked.Increment(ref _requests);
            using SafeFileHandle fd = fds.Take(0);
            regions.Map(map, fd);
        }

        public void ShmemUnmap(in VhostUserShmemMap map)
        {
            Interlocked.Increment(ref _requests);
            regions.Unmap(map);
        }
    }
}
