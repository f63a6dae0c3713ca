using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.Kernel;
using Vhost.User.Messages;
using Vhost.Vdpa;

namespace Vhost.Tests.Vdpa;

/// <summary>
/// vhost-vdpa without a device: the IOTLB messages written to the fd (captured through a
/// socketpair), argument validation, and ENOTTY on a non-vhost fd. The real device is exercised
/// in tests/Vhost.KernelTests inside the guest (VDUSE block device).
/// </summary>
public sealed class VhostVdpaTests
{
    private const int MessageSize = 72;

    private static VhostVdpa OverSocket(out SafeFileHandle peer, VhostBackendFeatures acked)
    {
        (SafeFileHandle a, SafeFileHandle b) = UnixSocket.CreatePair();
        peer = b;
        var vdpa = new VhostVdpa(a);
        vdpa.AssumeBackendFeatures(acked);
        vdpa.AssumeIovaRange(new VdpaIovaRange(0x1000, 0xFFFF_FFFF));
        return vdpa;
    }

    private static (uint Type, uint Asid, ulong Iova, ulong Size, ulong UserAddress, byte Perm, byte IotlbType) Next(SafeFileHandle peer)
    {
        byte[] m = new byte[MessageSize];
        Assert.Equal(MessageSize, Fd.Read(peer, m));
        return (BitConverter.ToUInt32(m, 0), BitConverter.ToUInt32(m, 4), BitConverter.ToUInt64(m, 8), BitConverter.ToUInt64(m, 16), BitConverter.ToUInt64(m, 24), m[32], m[33]);
    }

    [Fact]
    public void V2_message_carries_type_2_the_asid_and_the_iotlb_entry()
    {
        byte[] m = VhostVdpa.BuildIotlbMessage(VhostBackendFeatures.IotlbMessageV2 | VhostBackendFeatures.IotlbAsid, VhostIotlbType.Update, 0x1000, 0x2000, 0x7f00_0000_0000, VhostIotlbAccess.ReadWrite, 1);
        Assert.Equal(MessageSize, m.Length);
        Assert.Equal(2u, BitConverter.ToUInt32(m, 0));
        Assert.Equal(1u, BitConverter.ToUInt32(m, 4));
        Assert.Equal(0x1000UL, BitConverter.ToUInt64(m, 8));
        Assert.Equal(0x2000UL, BitConverter.ToUInt64(m, 16));
        Assert.Equal(0x7f00_0000_0000UL, BitConverter.ToUInt64(m, 24));
        Assert.Equal(3, m[32]);
        Assert.Equal(2, m[33]);
        Assert.True(m.AsSpan(34).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void V1_message_has_type_1_padding_and_no_asid()
    {
        byte[] m = VhostVdpa.BuildIotlbMessage(VhostBackendFeatures.None, VhostIotlbType.Invalidate, 0x4000, 0x1000, 0, VhostIotlbAccess.None, 0);
        Assert.Equal(1, BitConverter.ToInt32(m, 0));
        Assert.Equal(0u, BitConverter.ToUInt32(m, 4));
        Assert.Equal(0x4000UL, BitConverter.ToUInt64(m, 8));
        Assert.Equal(3, m[33]);
        Assert.Throws<ArgumentException>(() => VhostVdpa.BuildIotlbMessage(VhostBackendFeatures.None, VhostIotlbType.Update, 0, 1, 1, VhostIotlbAccess.ReadOnly, 2));
    }

    [Fact]
    public void Dma_map_and_unmap_write_update_and_invalidate_messages()
    {
        using VhostVdpa vdpa = OverSocket(out SafeFileHandle peer, VhostBackendFeatures.IotlbMessageV2);
        using (peer)
        {
            vdpa.DmaMap(0x1000, 0x2000, 0x7f00_0000_0000, readOnly: true);
            vdpa.DmaUnmap(0x1000, 0x2000);
            Assert.Equal((2u, 0u, 0x1000UL, 0x2000UL, 0x7f00_0000_0000UL, (byte)1, (byte)2), Next(peer));
            Assert.Equal((2u, 0u, 0x1000UL, 0x2000UL, 0UL, (byte)0, (byte)3), Next(peer));
        }
    }

    [Fact]
    public void Several_mappings_go_in_one_batch_when_batch_is_acked()
    {
        using VhostVdpa vdpa = OverSocket(out SafeFileHandle peer, VhostBackendFeatures.IotlbMessageV2 | VhostBackendFeatures.IotlbBatch | VhostBackendFeatures.IotlbAsid);
        using (peer)
        {
            vdpa.DmaMap([new(0x1000, 0x1000, 0x10000), new(0x8000, 0x1000, 0x20000)], asid: 1);
            Assert.Equal((byte)5, Next(peer).IotlbType);
            var first = Next(peer);
            Assert.Equal((2u, 1u, 0x1000UL, (byte)3, (byte)2), (first.Type, first.Asid, first.Iova, first.Perm, first.IotlbType));
            Assert.Equal(0x8000UL, Next(peer).Iova);
            var end = Next(peer);
            Assert.Equal((byte)6, end.IotlbType);
            Assert.Equal(1u, end.Asid);
        }
    }

    [Fact]
    public void Without_batch_mappings_go_one_by_one_as_v1_messages()
    {
        using VhostVdpa vdpa = OverSocket(out SafeFileHandle peer, VhostBackendFeatures.None);
        using (peer)
        {
            vdpa.DmaMap([new(0x1000, 0x1000, 0x10000), new(0x8000, 0x1000, 0x20000)]);
            Assert.Equal((1u, (byte)2), (Next(peer) is var a ? (a.Type, a.IotlbType) : default));
            Assert.Equal((1u, 0x8000UL), (Next(peer) is var b ? (b.Type, b.Iova) : default));
        }
    }

    [Fact]
    public void Memory_table_maps_each_region_at_its_guest_address_and_unmaps_the_old_one()
    {
        using VhostVdpa vdpa = OverSocket(out SafeFileHandle peer, VhostBackendFeatures.IotlbMessageV2);
        using (peer)
        {
            vdpa.SetMemoryTable([new(0x10000, 0x4000, 0x7f00_0000_0000, 0, null!)]);
            Assert.Equal((0x10000UL, 0x4000UL, 0x7f00_0000_0000UL, (byte)2), Next(peer) is var m ? (m.Iova, m.Size, m.UserAddress, m.IotlbType) : default);
            vdpa.SetMemoryTable([new(0x20000, 0x1000, 0x7f00_0001_0000, 0, null!)]);
            Assert.Equal((0x10000UL, 0x4000UL, (byte)3), Next(peer) is var u ? (u.Iova, u.Size, u.IotlbType) : default);
            Assert.Equal((0x20000UL, (byte)2), Next(peer) is var n ? (n.Iova, n.IotlbType) : default);
            Assert.Single(vdpa.MemoryTable);
        }
    }

    [Fact]
    public void Bad_dma_arguments_are_rejected_before_any_write()
    {
        using VhostVdpa vdpa = OverSocket(out SafeFileHandle peer, VhostBackendFeatures.IotlbMessageV2);
        using (peer)
        {
            Assert.Contains("empty or wraps", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(0x1000, 0, 0x10000)).Message, StringComparison.Ordinal);
            Assert.Contains("empty or wraps", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(ulong.MaxValue - 10, 0x1000, 0x10000)).Message, StringComparison.Ordinal);
            Assert.Contains("outside the device", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(0, 0x1000, 0x10000)).Message, StringComparison.Ordinal);
            Assert.Contains("outside the device", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(0xFFFF_F000, 0x2000, 0x10000)).Message, StringComparison.Ordinal);
            Assert.Contains("user address", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(0x1000, 0x1000, 0)).Message, StringComparison.Ordinal);
            Assert.Contains("IOTLB_ASID", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(0x1000, 0x1000, 0x10000, asid: 1)).Message, StringComparison.Ordinal);
            Assert.Contains("IOTLB_ASID", Assert.Throws<ArgumentException>(() => vdpa.DmaUnmap(0x1000, 0x1000, asid: 1)).Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => vdpa.DmaUnmap(0x1000, 0));
            Assert.Throws<ArgumentException>(() => vdpa.SetMemoryTable([]));

            // Nothing reached the fd.
            Fd.SetNonBlocking(peer, true);
            Assert.Equal(-1, Fd.TryRead(peer, new byte[MessageSize], out global::Interop.Error errno));
            Assert.Equal(Errno.EAGAIN, (Errno)errno);
        }
    }

    [Fact]
    public void Vdpa_ioctls_on_a_non_vhost_fd_are_ENOTTY()
    {
        using var vdpa = new VhostVdpa(Fd.Open("/dev/null", global::Interop.O_RDWR));
        using var efd = new EventFd();
        (Action Call, string Name)[] calls =
        [
            (() => vdpa.GetDeviceId(), "VHOST_VDPA_GET_DEVICE_ID"),
            (() => vdpa.GetStatus(), "VHOST_VDPA_GET_STATUS"),
            (() => vdpa.SetStatus(VirtioDeviceStatus.Acknowledge), "VHOST_VDPA_SET_STATUS"),
            (() => vdpa.GetConfigSize(), "VHOST_VDPA_GET_CONFIG_SIZE"),
            (() => vdpa.GetConfig(0, new byte[8]), "VHOST_VDPA_GET_CONFIG"),
            (() => vdpa.SetConfig(4, new byte[4]), "VHOST_VDPA_SET_CONFIG"),
            (() => vdpa.SetVringEnable(0, true), "VHOST_VDPA_SET_VRING_ENABLE"),
            (() => vdpa.GetVringNum(), "VHOST_VDPA_GET_VRING_NUM"),
            (() => vdpa.GetVringSize(0), "VHOST_VDPA_GET_VRING_SIZE"),
            (() => vdpa.SetConfigCall(efd), "VHOST_VDPA_SET_CONFIG_CALL"),
            (() => vdpa.SetConfigCall(null), "VHOST_VDPA_SET_CONFIG_CALL"),
            (() => vdpa.GetIovaRange(), "VHOST_VDPA_GET_IOVA_RANGE"),
            (() => vdpa.GetQueueCount(), "VHOST_VDPA_GET_VQS_COUNT"),
            (() => vdpa.GetGroupCount(), "VHOST_VDPA_GET_GROUP_NUM"),
            (() => vdpa.GetAddressSpaceCount(), "VHOST_VDPA_GET_AS_NUM"),
            (() => vdpa.GetVringGroup(0), "VHOST_VDPA_GET_VRING_GROUP"),
            (() => vdpa.GetVringDescriptorGroup(0), "VHOST_VDPA_GET_VRING_DESC_GROUP"),
            (() => vdpa.SetGroupAsid(0, 1), "VHOST_VDPA_SET_GROUP_ASID"),
            (() => vdpa.Suspend(), "VHOST_VDPA_SUSPEND"),
            (() => vdpa.Resume(), "VHOST_VDPA_RESUME"),
            (() => vdpa.DmaMap(0x1000, 0x1000, 0x10000), "VHOST_VDPA_GET_IOVA_RANGE"),
        ];
        foreach ((Action call, string name) in calls)
        {
            VhostException e = Assert.Throws<VhostException>(call);
            Assert.Equal(Errno.ENOTTY, e.Errno);
            Assert.Equal($"ioctl({name})", e.Operation);
        }
    }

    [Fact]
    public void Ring_addresses_are_iovas_passed_through_without_a_memory_table()
    {
        using var vdpa = new VhostVdpa(Fd.Open("/dev/null", global::Interop.O_RDWR));
        VhostException e = Assert.Throws<VhostException>(() => vdpa.SetVringAddress(0, new VringConfigData(64, 16, VringFlags.None, 0x1_0000_0000, 0x1_0000_2000, 0x1_0000_1000)));
        Assert.Equal("ioctl(VHOST_SET_VRING_ADDR)", e.Operation);
        Assert.Throws<ArgumentOutOfRangeException>(() => vdpa.SetVringAddress(0, new VringConfigData(64, 12, VringFlags.None, 0, 0x2000, 0x1000)));
    }

    [Fact]
    public void Config_arguments_are_checked()
    {
        using var vdpa = new VhostVdpa(Fd.Open("/dev/null", global::Interop.O_RDWR));
        Assert.Equal("buffer", Assert.Throws<ArgumentException>(() => vdpa.GetConfig(0, Span<byte>.Empty)).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentException>(() => vdpa.SetConfig(0, new byte[0x10001])).ParamName);
        Assert.Equal("offset", Assert.Throws<ArgumentOutOfRangeException>(() => vdpa.GetConfig(uint.MaxValue - 2, new byte[8])).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => vdpa.SetVringEnable(-1, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => vdpa.GetVringGroup(-1));
    }

    [Fact]
    public void Iova_range_contains_is_inclusive_and_overflow_safe()
    {
        var r = new VdpaIovaRange(0x1000, 0x1FFF);
        Assert.True(r.Contains(0x1000, 0x1000));
        Assert.False(r.Contains(0x1000, 0x1001));
        Assert.False(r.Contains(0xFFF, 1));
        Assert.False(r.Contains(0x1000, 0));
        var all = new VdpaIovaRange(0, ulong.MaxValue);
        Assert.True(all.Contains(ulong.MaxValue, 1));
        Assert.True(all.Contains(0, ulong.MaxValue));
        Assert.True(all.Contains(1, ulong.MaxValue));
        Assert.False(all.Contains(2, ulong.MaxValue));
    }

    [Fact]
    public void Status_bits_match_virtio()
    {
        Assert.Equal(0x0F, (int)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk));
        Assert.Equal(0x40, (int)VirtioDeviceStatus.NeedsReset);
        Assert.Equal(0x80, (int)VirtioDeviceStatus.Failed);
        Assert.Equal(72, Marshal.SizeOf<global::Interop.vhost_msg_v2>());
    }
}
