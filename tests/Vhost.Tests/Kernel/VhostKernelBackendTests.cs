using Microsoft.Win32.SafeHandles;
using Vhost.Kernel;
using Vhost.Virtio;

namespace Vhost.Tests.Kernel;

/// <summary>
/// The kernel vhost frontends on fds that are not vhost devices (<c>/dev/null</c>, an eventfd):
/// argument validation happens before any ioctl (the specific argument exception, never the
/// ioctl's ENOTTY), and a refused ioctl gives a VhostException naming the ioctl and saying the fd
/// is not a vhost device. Real devices are exercised in tests/Vhost.KernelTests inside a guest.
/// </summary>
public sealed class VhostKernelBackendTests
{
    private const ulong Page = 4096;

    internal static SafeFileHandle DevNull() => Fd.Open("/dev/null", global::Interop.O_RDWR);

    private static VringConfigData Ring(ushort size = 16, ulong desc = 0x1000, ulong avail = 0x2000, ulong used = 0x3000, ushort max = 256, VringFlags flags = VringFlags.None, ulong? log = null)
        => new(max, size, flags, desc, used, avail, log);

    [Fact]
    public void Ioctl_on_dev_null_is_ENOTTY_with_a_clear_message()
    {
        using var net = new VhostNet(DevNull());
        VhostException e = Assert.Throws<VhostException>(() => net.GetFeatures());
        Assert.Equal(Errno.ENOTTY, e.Errno);
        Assert.Equal("ioctl(VHOST_GET_FEATURES)", e.Operation);
        Assert.Contains("not a vhost-net device", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ioctl_on_an_eventfd_is_ENOTTY_for_every_kind_of_call()
    {
        using var efd = new EventFd();
        using var vsock = new VhostVsock(Fd.Duplicate(efd));
        Action[] calls =
        [
            () => vsock.SetOwner(),
            () => vsock.ResetOwner(),
            () => vsock.SetFeatures((ulong)VirtioFeatures.Version1),
            () => vsock.GetBackendFeatures(),
            () => vsock.SetBackendFeatures(VhostBackendFeatures.IotlbMessageV2),
            () => vsock.SetVringNum(0, 16),
            () => vsock.SetVringBase(1, 0),
            () => vsock.GetVringBase(0),
            () => vsock.SetVringKick(0, efd),
            () => vsock.SetVringCall(0, null),
            () => vsock.SetVringError(1, efd),
            () => vsock.SetVringBusyLoopTimeout(0, 50),
            () => vsock.GetVringBusyLoopTimeout(0),
            () => vsock.SetLogBase(0x1000, null),
            () => vsock.SetLogFd(efd),
            () => vsock.SetGuestCid(3),
            () => vsock.Start(),
            () => vsock.Stop(),
        ];
        foreach (Action call in calls)
        {
            VhostException e = Assert.Throws<VhostException>(call);
            Assert.Equal(Errno.ENOTTY, e.Errno);
            Assert.StartsWith("ioctl(VHOST_", e.Operation, StringComparison.Ordinal);
            Assert.Contains("not a vhost-vsock device", e.Message, StringComparison.Ordinal);
        }

        Assert.Equal(VhostBackendFeatures.None, vsock.AckedBackendFeatures);
    }

    [Fact]
    public void Worker_and_endianness_ioctls_say_the_kernel_does_not_support_them()
    {
        using var net = new VhostNet(DevNull());
        foreach (Action call in new Action[] { () => net.CreateWorker(), () => net.FreeWorker(1), () => net.AttachVringWorker(0, 1), () => net.GetVringWorker(0) })
        {
            VhostException e = Assert.Throws<VhostException>(call);
            Assert.Equal(Errno.ENOTTY, e.Errno);
            Assert.Contains("not supported by this kernel", e.Message, StringComparison.Ordinal);
        }

        VhostException endian = Assert.Throws<VhostException>(() => net.SetVringEndianness(0, VringEndianness.Big));
        Assert.Contains("CONFIG_VHOST_CROSS_ENDIAN_LEGACY", endian.Message, StringComparison.Ordinal);
        Assert.Equal("ioctl(VHOST_GET_VRING_ENDIAN)", Assert.Throws<VhostException>(() => net.GetVringEndianness(1)).Operation);
    }

    [Fact]
    public void Net_set_backend_on_a_non_vhost_fd_is_ENOTTY()
    {
        using var net = new VhostNet(DevNull());
        using SafeFileHandle tap = DevNull();
        Assert.Equal(Errno.ENOTTY, Assert.Throws<VhostException>(() => net.SetBackend(0, tap)).Errno);
        Assert.Equal(Errno.ENOTTY, Assert.Throws<VhostException>(() => net.SetBackend(1, null)).Errno);
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetBackend(-1, tap));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(100)]
    [InlineData(65535)]
    public void Queue_size_must_be_a_nonzero_power_of_two(int size)
    {
        using var net = new VhostNet(DevNull());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringNum(0, (ushort)size));
        Assert.Equal("num", e.ParamName);
    }

    [Fact]
    public void Valid_queue_size_reaches_the_ioctl()
    {
        using var net = new VhostNet(DevNull());
        Assert.Equal("ioctl(VHOST_SET_VRING_NUM)", Assert.Throws<VhostException>(() => net.SetVringNum(0, 32768)).Operation);
        Assert.Equal("ioctl(VHOST_SET_VRING_NUM)", Assert.Throws<VhostException>(() => net.SetVringNum(1, 1)).Operation);
    }

    [Fact]
    public void Negative_queue_index_is_rejected_before_the_ioctl()
    {
        using var net = new VhostNet(DevNull());
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringNum(-1, 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringBase(-1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.GetVringBase(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringKick(-1, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringCall(-2, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringError(-3, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringAddress(-1, Ring()));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringBusyLoopTimeout(-1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.AttachVringWorker(-1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.SetVringEndianness(0, (VringEndianness)7));
    }

    public static TheoryData<VringConfigData, string> BadLayouts => new()
    {
        { Ring(size: 0), "power of two" },
        { Ring(size: 24), "power of two" },
        { Ring(size: 512, max: 256), "power of two" },
        { Ring(max: 0), "maximum queue size is zero" },
        { Ring(desc: 0x1008), "16-byte aligned" },
        { Ring(avail: 0x2001), "2-byte aligned" },
        { Ring(used: 0x3002), "4-byte aligned" },
        { Ring(flags: VringFlags.Log), "log address" },
        { Ring(log: 0x8000), "log address" },
        { Ring(flags: (VringFlags)0x2), "unknown ring flags" },
    };

    [Theory]
    [MemberData(nameof(BadLayouts))]
    public void Bad_ring_layout_is_rejected_before_the_ioctl(VringConfigData config, string reason)
    {
        using var net = new VhostNet(DevNull());
        net.RecordMemoryTable([new(0, 1 << 20, 0x7f00_0000_0000)]);
        ArgumentException e = Assert.ThrowsAny<ArgumentException>(() => net.SetVringAddress(0, config));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ring_addresses_need_a_memory_table()
    {
        using var net = new VhostNet(DevNull());
        var e = Assert.Throws<InvalidOperationException>(() => net.SetVringAddress(0, Ring()));
        Assert.Contains("memory table", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x10_0000UL, 0x2000UL, 0x3000UL, "descriptor table")]
    [InlineData(0xF_FFF0UL, 0x2000UL, 0x3000UL, "descriptor table")] // straddles the end of region 0
    [InlineData(0x1000UL, 0x10_0000UL, 0x3000UL, "available ring")]
    [InlineData(0x1000UL, 0x2000UL, 0xF_FFF0UL, "used ring")]
    [InlineData(0x1000UL, 0x2000UL, 0x20_0000UL, "used ring")] // in the hole between the regions
    public void Rings_outside_guest_memory_are_rejected_before_the_ioctl(ulong desc, ulong avail, ulong used, string what)
    {
        using var net = new VhostNet(DevNull());
        net.RecordMemoryTable([new(0, 0x10_0000, 0x7f00_0000_0000), new(0x40_0000, 0x10_0000, 0x7f10_0000_0000)]);
        ArgumentException e = Assert.Throws<ArgumentException>(() => net.SetVringAddress(0, Ring(desc: desc, avail: avail, used: used)));
        Assert.Contains(what, e.Message, StringComparison.Ordinal);
        Assert.Contains("guest memory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rings_inside_guest_memory_reach_the_ioctl()
    {
        using var net = new VhostNet(DevNull());
        net.RecordMemoryTable([new(0, 0x10_0000, 0x7f00_0000_0000), new(0x40_0000, 0x10_0000, 0x7f10_0000_0000)]);
        VhostException e = Assert.Throws<VhostException>(() => net.SetVringAddress(1, Ring(desc: 0x40_0000, avail: 0x1000, used: 0x4F_F000)));
        Assert.Equal("ioctl(VHOST_SET_VRING_ADDR)", e.Operation);
        Assert.Equal(Errno.ENOTTY, e.Errno);
    }

    [Fact]
    public void Guest_addresses_translate_to_user_addresses_within_one_region()
    {
        VhostKernelBackend.MemoryRange[] table = [new(0, 0x10_0000, 0x7f00_0000_0000), new(0x40_0000, 0x10_0000, 0x7f10_0000_0000)];
        Assert.Equal(0x7f00_0000_1000UL, VhostKernelBackend.TranslateGuestAddress(table, 0x1000, 256, "x"));
        Assert.Equal(0x7f10_0000_0010UL, VhostKernelBackend.TranslateGuestAddress(table, 0x40_0010, 16, "x"));
        Assert.Equal(0x7f10_000F_FF00UL, VhostKernelBackend.TranslateGuestAddress(table, 0x4F_FF00, 0x100, "x")); // ends exactly at the region end
        Assert.Throws<ArgumentException>(() => VhostKernelBackend.TranslateGuestAddress(table, 0x4F_FF00, 0x101, "x"));
        Assert.Throws<ArgumentException>(() => VhostKernelBackend.TranslateGuestAddress(table, ulong.MaxValue - 4, 16, "x"));
    }

    [Fact]
    public void Memory_table_validation()
    {
        using SafeFileHandle fd = DevNull();
        Assert.Throws<ArgumentException>(() => VhostKernelBackend.ValidateMemoryTable([]));
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => VhostKernelBackend.ValidateMemoryTable([new(0, 0, 0x1000, 0, fd)])).Message, StringComparison.Ordinal);
        Assert.Contains("wraps", Assert.Throws<ArgumentException>(() => VhostKernelBackend.ValidateMemoryTable([new(ulong.MaxValue - 0xFFF, 0x2000, 0x1000, 0, fd)])).Message, StringComparison.Ordinal);
        Assert.Contains("no user address", Assert.Throws<ArgumentException>(() => VhostKernelBackend.ValidateMemoryTable([new(0, 0x1000, 0, 0, fd)])).Message, StringComparison.Ordinal);
        Assert.Contains("overlap", Assert.Throws<ArgumentException>(() => VhostKernelBackend.ValidateMemoryTable([new(0, 0x2000, 0x1000, 0, fd), new(0x1000, 0x1000, 0x9000, 0, fd)])).Message, StringComparison.Ordinal);
        Assert.Equal(2, VhostKernelBackend.ValidateMemoryTable([new(0, 0x1000, 0x1000, 0, fd), new(0x1000, 0x1000, 0x9000, 0, fd)]).Length);
    }

    [Fact]
    public void Bad_memory_table_is_rejected_before_the_ioctl_and_a_refused_one_is_not_recorded()
    {
        using var net = new VhostNet(DevNull());
        Assert.Throws<ArgumentException>(() => net.SetMemoryTable([]));
        VhostException e = Assert.Throws<VhostException>(() => net.SetMemoryTable([new(0, Page, 0x7f00_0000_0000, 0, null!)]));
        Assert.Equal("ioctl(VHOST_SET_MEM_TABLE)", e.Operation);
        Assert.Empty(net.MemoryTable);
        Assert.Throws<InvalidOperationException>(() => net.SetVringAddress(0, Ring()));
    }

    [Fact]
    public void Vsock_cid_must_not_be_reserved()
    {
        using var vsock = new VhostVsock(DevNull());
        foreach (ulong cid in new ulong[] { 0, 1, 2, uint.MaxValue, 1UL << 32, ulong.MaxValue })
        {
            Assert.Equal("cid", Assert.Throws<ArgumentOutOfRangeException>(() => vsock.SetGuestCid(cid)).ParamName);
        }

        Assert.Equal(Errno.ENOTTY, Assert.Throws<VhostException>(() => vsock.SetGuestCid(uint.MaxValue - 1)).Errno);
    }

    [Fact]
    public void Open_of_a_missing_node_names_the_module()
    {
        VhostException e = Assert.Throws<VhostException>(() => VhostNet.Open("/dev/no-such-vhost-net"));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains("vhost_net kernel module", e.Message, StringComparison.Ordinal);
        Assert.Contains("vhost_vsock", Assert.Throws<VhostException>(() => VhostVsock.Open("/dev/no-such-vhost-vsock")).Message, StringComparison.Ordinal);
        Assert.Contains("vhost_scsi", Assert.Throws<VhostException>(() => VhostScsi.Open("/dev/no-such-vhost-scsi")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_rejects_a_closed_handle_and_dispose_is_idempotent()
    {
        SafeFileHandle fd = DevNull();
        fd.Dispose();
        Assert.Throws<ArgumentException>(() => new VhostNet(fd));
        Assert.Throws<ArgumentNullException>(() => new VhostVsock(null!));

        var net = new VhostNet(DevNull());
        SafeFileHandle handle = net.Handle;
        net.Dispose();
        net.Dispose();
        Assert.True(handle.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => net.GetFeatures());
    }

    [Fact]
    public void Backend_feature_masks_match_the_uapi_bit_numbers()
    {
        Assert.Equal(1UL << 1, (ulong)VhostBackendFeatures.IotlbMessageV2);
        Assert.Equal(1UL << 2, (ulong)VhostBackendFeatures.IotlbBatch);
        Assert.Equal(1UL << 3, (ulong)VhostBackendFeatures.IotlbAsid);
        Assert.Equal(1UL << 4, (ulong)VhostBackendFeatures.Suspend);
        Assert.Equal(1UL << 5, (ulong)VhostBackendFeatures.Resume);
        Assert.Equal(1UL << 6, (ulong)VhostBackendFeatures.EnableAfterDriverOk);
        Assert.Equal(1UL << 7, (ulong)VhostBackendFeatures.DescriptorAsid);
        Assert.Equal(0, (int)VringEndianness.Little);
        Assert.Equal(1, (int)VringEndianness.Big);
    }
}
