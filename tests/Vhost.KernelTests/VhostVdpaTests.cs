using System.Buffers.Binary;
using System.Text;
using Vhost.Kernel;
using Vhost.Vdpa;
using Vhost.Virtio;
using Vhost.Vmm;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.KernelTests;

/// <summary>
/// The real <c>/dev/vhost-vdpa-0</c>: a VDUSE virtio-blk device exported by qemu-storage-daemon
/// (8 MiB image whose sector 0 starts with <see cref="Sector0Pattern"/>) and bound to vhost_vdpa.
/// </summary>
[Collection(KernelDeviceCollection.Name)]
public sealed class VhostVdpaTests
{
    public const string Sector0Pattern = "KGUEST-VDPA-SECTOR0-PATTERN";
    private const uint VirtioIdBlock = 2;
    private const ulong VersionOne = (ulong)VirtioFeatures.Version1;
    private const ulong AccessPlatform = (ulong)VirtioFeatures.AccessPlatform;
    private const ulong GuestBase = 0x10_0000; // guest physical address = IOVA of the RAM
    private const VirtioDeviceStatus Started = VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk;

    [Fact]
    public void Device_queries()
    {
        KernelDevice.Require(KernelDevice.Vdpa);
        using var vdpa = VhostVdpa.Open();
        vdpa.SetOwner();
        Assert.Equal(VirtioIdBlock, vdpa.GetDeviceId());
        Assert.Equal(1u, vdpa.GetQueueCount());
        Assert.Equal(1u, vdpa.GetGroupCount());
        Assert.Equal(1u, vdpa.GetAddressSpaceCount());
        // VDUSE (6.12) has no get_vq_group: the kernel says EOPNOTSUPP; a device that has one puts queue 0 in group 0.
        Assert.Equal(0u, SucceedsOrRefused(() => vdpa.GetVringGroup(0), Errno.EOPNOTSUPP) ?? 0u);
        Assert.Equal(64, vdpa.GetVringNum());
        Assert.True(vdpa.GetConfigSize() >= 8, $"config size {vdpa.GetConfigSize()}");
        VdpaIovaRange range = vdpa.GetIovaRange();
        Assert.True(range.Contains(GuestBase, 1 << 20), $"IOVA range {range}");
        ulong features = vdpa.GetFeatures();
        Assert.Equal(VersionOne | AccessPlatform, features & (VersionOne | AccessPlatform));
        VhostBackendFeatures backend = vdpa.GetBackendFeatures();
        Assert.True(backend.HasFlag(VhostBackendFeatures.IotlbMessageV2 | VhostBackendFeatures.IotlbBatch), $"backend features {backend}");
        vdpa.SetStatus(VirtioDeviceStatus.Reset);
        Assert.Equal(VirtioDeviceStatus.Reset, vdpa.GetStatus());
    }

    [Fact]
    public void Config_space_holds_the_capacity_of_the_8_MiB_image()
    {
        KernelDevice.Require(KernelDevice.Vdpa);
        using var vdpa = VhostVdpa.Open();
        vdpa.SetOwner();
        Span<byte> capacity = stackalloc byte[8];
        vdpa.GetConfig(0, capacity);
        Assert.Equal(16384UL, BinaryPrimitives.ReadUInt64LittleEndian(capacity)); // 512-byte sectors
        Span<byte> blockSize = stackalloc byte[4];
        vdpa.GetConfig(20, blockSize); // virtio_blk_config.blk_size
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(blockSize));
        Assert.ThrowsAny<VhostException>(() => vdpa.GetConfig(vdpa.GetConfigSize(), new byte[8]));
    }

    [Fact]
    public void Unsupported_operations_are_refused_by_the_kernel()
    {
        KernelDevice.Require(KernelDevice.Vdpa);
        using var vdpa = VhostVdpa.Open();
        vdpa.SetOwner();
        VhostBackendFeatures offered = vdpa.GetBackendFeatures();
        Assert.False(offered.HasFlag(VhostBackendFeatures.Suspend), "VDUSE offers SUSPEND");
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<VhostException>(() => vdpa.SetBackendFeatures(VhostBackendFeatures.Suspend)).Errno);
        // Before DRIVER_OK, suspend and resume are no-ops the kernel accepts (they are refused on a live device: see the I/O test).
        vdpa.Suspend();
        vdpa.Resume();
        Assert.Equal(Errno.EINVAL, Assert.Throws<VhostException>(() => vdpa.SetGroupAsid(0, 1)).Errno); // only address space 0 exists
        Assert.Equal(Errno.ENOBUFS, Assert.Throws<VhostException>(() => vdpa.GetVringGroup(1)).Errno); // one queue
        Assert.Equal(Errno.ENOBUFS, Assert.Throws<VhostException>(() => vdpa.SetVringEnable(1, true)).Errno);
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<VhostException>(() => vdpa.GetVringDescriptorGroup(0)).Errno); // DESC_ASID not acked
        SucceedsOrRefused(() => { vdpa.SetGroupAsid(0, 0); return 0u; }, Errno.EOPNOTSUPP); // VDUSE (6.12) has no set_group_asid
        Assert.Contains("IOTLB_ASID", Assert.Throws<ArgumentException>(() => vdpa.DmaMap(GuestBase, 4096, 0x1000, asid: 1)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_then_read_a_block_through_an_iotlb_mapped_queue()
    {
        KernelDevice.Require(KernelDevice.Vdpa);
        using GuestRam ram = GuestRam.Create(1 << 20, GuestBase); // MAP_SHARED memfd: VDUSE needs file-backed shared memory
        using var vdpa = VhostVdpa.Open();
        using var device = new VmmVhostDevice(vdpa, ram); // the common steps, through IVhostBackend; the status steps are vDPA's own
        device.SetOwner();
        vdpa.SetBackendFeatures(vdpa.GetBackendFeatures() & (VhostBackendFeatures.IotlbMessageV2 | VhostBackendFeatures.IotlbBatch));
        vdpa.SetStatus(VirtioDeviceStatus.Reset);
        vdpa.SetStatus(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver);
        Assert.Equal(VersionOne | AccessPlatform, device.SetFeatures(0, required: VersionOne | AccessPlatform));
        vdpa.SetStatus(Started);
        Assert.Equal(Started, vdpa.GetStatus());

        device.SetMemoryTable(); // DMA map: IOVA = guest physical address
        VmmQueue q = device.AddQueue(16, vdpa.GetVringNum());
        vdpa.SetVringEnable(0, true);
        vdpa.SetStatus(Started | VirtioDeviceStatus.DriverOk);
        VirtioDeviceStatus live = vdpa.GetStatus();
        Assert.Equal(Started | VirtioDeviceStatus.DriverOk, live);

        // A live VDUSE device cannot be suspended or resumed: the kernel refuses, and the device keeps running.
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<VhostException>(() => vdpa.Suspend()).Errno);
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<VhostException>(() => vdpa.Resume()).Errno);

        ulong header = ram.Allocate(16, 16);
        ulong data = ram.Allocate(512, 512);
        ulong status = ram.Allocate(1, 1);
        byte[] written = Encoding.ASCII.GetBytes("VHOST-DOTNET-VDPA-WRITE-" + Guid.NewGuid().ToString("N"));

        // WRITE sector 1, then READ it back, then READ sector 0 (written by the guest script).
        Request(ram, q, header, data, status, type: 1, sector: 1, payload: written, 1);
        byte[] back = Request(ram, q, header, data, status, type: 0, sector: 1, payload: null, 2);
        Assert.Equal(written, back[..written.Length]);
        byte[] sector0 = Request(ram, q, header, data, status, type: 0, sector: 0, payload: null, 3);
        Assert.Equal(Sector0Pattern, Encoding.ASCII.GetString(sector0, 0, Sector0Pattern.Length));

        // GET_VRING_BASE on the live device: the three requests were taken.
        Assert.Equal(3u, Assert.Single(device.Stop()));
        vdpa.SetStatus(VirtioDeviceStatus.Reset);
        vdpa.DmaUnmap(GuestBase, 1 << 20);
    }

    /// <summary>Runs a call the device may not implement: its value, or null when the kernel refused with one of <paramref name="refusals"/> (ENOTTY, a wrong encoding, is never accepted).</summary>
    private static uint? SucceedsOrRefused(Func<uint> call, params Errno[] refusals)
    {
        try
        {
            return call();
        }
        catch (VhostException e) when (e.Errno is { } errno && refusals.Contains(errno))
        {
            return null;
        }
    }

    private static byte[] Request(GuestRam ram, VmmQueue q, ulong header, ulong data, ulong status, uint type, ulong sector, byte[]? payload, ushort expectUsed)
    {
        // struct virtio_blk_outhdr: type u32, ioprio u32, sector u64.
        Span<byte> h = ram.GetSpan(header, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], sector);
        ram.GetSpan(data, 512).Clear();
        payload?.CopyTo(ram.GetSpan(data, 512));
        ram.GetSpan(status, 1)[0] = 0xFF;
        bool read = type == 0;
        ushort head = q.Submit([new VirtqBuffer(header, 16, false), new VirtqBuffer(data, 512, read), new VirtqBuffer(status, 1, true)]);
        Assert.Equal(head, q.WaitForCompletion(TimeSpan.FromSeconds(10)).Head);
        Assert.Equal(expectUsed, q.Driver.LastUsedIndex);
        Assert.True(q.WaitForCalls(1, TimeSpan.FromSeconds(10)), $"{(read ? "READ" : "WRITE")} sector {sector}: used idx {q.Driver.DeviceUsedIndex}, calls {q.CallsReceived}");
        Assert.Equal(0, ram.GetSpan(status, 1)[0]); // VIRTIO_BLK_S_OK
        return ram.GetSpan(data, 512).ToArray();
    }
}
