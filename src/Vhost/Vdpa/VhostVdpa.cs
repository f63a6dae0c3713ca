using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.Kernel;
using Vhost.User.Messages;

namespace Vhost.Vdpa;

/// <summary>
/// A vDPA device through <c>/dev/vhost-vdpa-N</c>: the vhost ioctls plus the vDPA ones (device
/// id, status, config space, vring enable, groups and address spaces, suspend/resume), with DMA
/// mappings sent as IOTLB messages written to the fd.
/// </summary>
/// <remarks>
/// <para>
/// Addresses are IOVAs, not user addresses: <see cref="VhostKernelBackend.SetVringAddress"/> passes the
/// ring addresses through unchanged, and descriptors hold IOVAs. Map memory first with
/// <see cref="DmaMap(ulong, ulong, ulong, bool, uint)"/>. <see cref="SetMemoryTable"/> is the
/// no-vIOMMU shortcut: it maps each region at IOVA = guest physical address (and unmaps the
/// regions of the previous table).
/// </para>
/// <para>The order that works (measured with a VDUSE block device on Linux 6.12):</para>
/// <list type="number">
/// <item><see cref="VhostKernelBackend.SetOwner"/>, then <see cref="VhostKernelBackend.SetBackendFeatures"/> (IOTLB_MSG_V2, and BATCH if wanted) before any IOTLB message;</item>
/// <item><see cref="SetStatus"/> reset (0), then ACKNOWLEDGE | DRIVER;</item>
/// <item><see cref="VhostKernelBackend.SetFeatures"/> (VERSION_1 and ACCESS_PLATFORM are required), then FEATURES_OK and read it back;</item>
/// <item>DMA map, then per queue: vring num, base, addr (IOVAs), kick, call, <see cref="SetVringEnable"/>;</item>
/// <item>DRIVER_OK.</item>
/// </list>
/// <para>
/// VDUSE (user-space vDPA devices such as qemu-storage-daemon's <c>vduse-blk</c>) only sees memory
/// that is a <c>MAP_SHARED</c> file-backed mapping (a memfd): with anonymous or private memory every
/// call succeeds, the device goes to DRIVER_OK, and no request ever completes.
/// </para>
/// </remarks>
public sealed class VhostVdpa : VhostKernelBackend
{
    /// <summary>The device node of the first vhost-vdpa device.</summary>
    public const string DefaultPath = "/dev/vhost-vdpa-0";

    private readonly Lock _dmaLock = new();
    private VdpaIovaRange? _iovaRange;

    /// <summary>Wraps an open <c>/dev/vhost-vdpa-N</c> fd, taking ownership of it.</summary>
    /// <param name="device">The device fd.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public VhostVdpa(SafeFileHandle device)
        : base(device, "vhost-vdpa")
    {
    }

    /// <summary>Opens <paramref name="path"/>.</summary>
    /// <param name="path">The device node, <c>/dev/vhost-vdpa-N</c>.</param>
    /// <returns>The device.</returns>
    /// <exception cref="VhostException">The open failed (<c>ENOENT</c>: no vDPA device bound to <c>vhost_vdpa</c>; <c>EBUSY</c>: already open).</exception>
    public static VhostVdpa Open(string path = DefaultPath) => new(OpenDevice(path, "vhost_vdpa"));

    /// <summary>Reads the virtio device id (<c>VHOST_VDPA_GET_DEVICE_ID</c>; 1 net, 2 block, ...).</summary>
    /// <returns>The device id.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public uint GetDeviceId() => IoctlGet<uint>(VhostIoctls.VHOST_VDPA_GET_DEVICE_ID, nameof(VhostIoctls.VHOST_VDPA_GET_DEVICE_ID));

    /// <summary>Reads the device status (<c>VHOST_VDPA_GET_STATUS</c>).</summary>
    /// <returns>The status.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public VirtioDeviceStatus GetStatus()
    {
        return (VirtioDeviceStatus)IoctlGet<byte>(VhostIoctls.VHOST_VDPA_GET_STATUS, nameof(VhostIoctls.VHOST_VDPA_GET_STATUS));
    }

    /// <summary>Writes the device status (<c>VHOST_VDPA_SET_STATUS</c>); 0 resets the device.</summary>
    /// <param name="status">The new status; bits may only be added, except by a reset.</param>
    /// <exception cref="VhostException">The kernel refused (<c>EINVAL</c> when clearing bits without a reset).</exception>
    public void SetStatus(VirtioDeviceStatus status)
    {
        byte value = (byte)status;
        Ioctl(VhostIoctls.VHOST_VDPA_SET_STATUS, ref value, nameof(VhostIoctls.VHOST_VDPA_SET_STATUS));
    }

    /// <summary>Reads the size of the device's config space (<c>VHOST_VDPA_GET_CONFIG_SIZE</c>).</summary>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public uint GetConfigSize() => IoctlGet<uint>(VhostIoctls.VHOST_VDPA_GET_CONFIG_SIZE, nameof(VhostIoctls.VHOST_VDPA_GET_CONFIG_SIZE));

    /// <summary>Reads config space (<c>VHOST_VDPA_GET_CONFIG</c>).</summary>
    /// <param name="offset">The offset in config space.</param>
    /// <param name="buffer">Receives <c>buffer.Length</c> bytes.</param>
    /// <exception cref="ArgumentException">An empty buffer, or one longer than 64 KiB.</exception>
    /// <exception cref="VhostException">The kernel refused (<c>EINVAL</c>/<c>E2BIG</c> when the range exceeds <see cref="GetConfigSize"/>).</exception>
    public void GetConfig(uint offset, Span<byte> buffer)
    {
        byte[] message = ConfigMessage(offset, buffer.Length, nameof(buffer));
        unsafe
        {
            // SAFETY: the pinned message holds the 8-byte header and buffer.Length bytes.
            fixed (byte* p = message)
            {
                Ioctl(VhostIoctls.VHOST_VDPA_GET_CONFIG, p, nameof(VhostIoctls.VHOST_VDPA_GET_CONFIG));
            }
        }

        message.AsSpan(Marshal.SizeOf<Interop.vhost_vdpa_config>(), buffer.Length).CopyTo(buffer);
    }

    /// <summary>Writes config space (<c>VHOST_VDPA_SET_CONFIG</c>).</summary>
    /// <param name="offset">The offset in config space.</param>
    /// <param name="data">The bytes to write.</param>
    /// <exception cref="ArgumentException">Empty data, or more than 64 KiB.</exception>
    /// <exception cref="VhostException">The kernel refused (range, or a read-only field).</exception>
    public void SetConfig(uint offset, ReadOnlySpan<byte> data)
    {
        byte[] message = ConfigMessage(offset, data.Length, nameof(data));
        data.CopyTo(message.AsSpan(Marshal.SizeOf<Interop.vhost_vdpa_config>()));
        unsafe
        {
            // SAFETY: the pinned message holds the 8-byte header and data.Length bytes.
            fixed (byte* p = message)
            {
                Ioctl(VhostIoctls.VHOST_VDPA_SET_CONFIG, p, nameof(VhostIoctls.VHOST_VDPA_SET_CONFIG));
            }
        }
    }

    /// <summary>Enables or disables a queue (<c>VHOST_VDPA_SET_VRING_ENABLE</c>).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="enable">Whether the device may process it.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative queue index.</exception>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public void SetVringEnable(int queueIndex, bool enable)
    {
        CheckQueueIndex(queueIndex);
        SetVringState(VhostIoctls.VHOST_VDPA_SET_VRING_ENABLE, nameof(VhostIoctls.VHOST_VDPA_SET_VRING_ENABLE), queueIndex, enable ? 1u : 0u);
    }

    /// <summary>Reads the largest queue size the device supports (<c>VHOST_VDPA_GET_VRING_NUM</c>).</summary>
    /// <returns>The maximum size.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public ushort GetVringNum()
    {
        return IoctlGet<ushort>(VhostIoctls.VHOST_VDPA_GET_VRING_NUM, nameof(VhostIoctls.VHOST_VDPA_GET_VRING_NUM));
    }

    /// <summary>Reads the largest size of one queue (<c>VHOST_VDPA_GET_VRING_SIZE</c>, Linux 6.10+).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The maximum size of that queue.</returns>
    /// <exception cref="VhostException"><c>ENOTTY</c> on older kernels.</exception>
    public ushort GetVringSize(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        return (ushort)GetVringState(VhostIoctls.VHOST_VDPA_GET_VRING_SIZE, nameof(VhostIoctls.VHOST_VDPA_GET_VRING_SIZE), queueIndex, 0, "VHOST_VDPA_GET_VRING_SIZE needs Linux 6.10+");
    }

    /// <summary>Sets (or, with <see langword="null"/>, clears) the config-change interrupt eventfd (<c>VHOST_VDPA_SET_CONFIG_CALL</c>).</summary>
    /// <param name="fd">The eventfd; stays owned by the caller.</param>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public void SetConfigCall(EventFd? fd)
    {
        bool added = false;
        try
        {
            int raw = Interop.VHOST_FILE_UNBIND;
            if (fd is not null)
            {
                fd.DangerousAddRef(ref added);
                raw = (int)fd.DangerousGetHandle();
            }

            IoctlInt(VhostIoctls.VHOST_VDPA_SET_CONFIG_CALL, nameof(VhostIoctls.VHOST_VDPA_SET_CONFIG_CALL), raw);
        }
        finally
        {
            if (added)
            {
                fd!.DangerousRelease();
            }
        }
    }

    /// <summary>Reads the IOVA range the device can translate (<c>VHOST_VDPA_GET_IOVA_RANGE</c>).</summary>
    /// <returns>The range.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public VdpaIovaRange GetIovaRange()
    {
        var range = default(Interop.vhost_vdpa_iova_range);
        Ioctl(VhostIoctls.VHOST_VDPA_GET_IOVA_RANGE, ref range, nameof(VhostIoctls.VHOST_VDPA_GET_IOVA_RANGE));

        var result = new VdpaIovaRange(range.first, range.last);
        _iovaRange = result;
        return result;
    }

    /// <summary>Reads the number of virtqueues (<c>VHOST_VDPA_GET_VQS_COUNT</c>).</summary>
    /// <returns>The queue count.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public uint GetQueueCount() => IoctlGet<uint>(VhostIoctls.VHOST_VDPA_GET_VQS_COUNT, nameof(VhostIoctls.VHOST_VDPA_GET_VQS_COUNT));

    /// <summary>Reads the number of virtqueue groups (<c>VHOST_VDPA_GET_GROUP_NUM</c>).</summary>
    /// <returns>The group count.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public uint GetGroupCount() => IoctlGet<uint>(VhostIoctls.VHOST_VDPA_GET_GROUP_NUM, nameof(VhostIoctls.VHOST_VDPA_GET_GROUP_NUM));

    /// <summary>Reads the number of address spaces (<c>VHOST_VDPA_GET_AS_NUM</c>).</summary>
    /// <returns>The address-space count.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public uint GetAddressSpaceCount() => IoctlGet<uint>(VhostIoctls.VHOST_VDPA_GET_AS_NUM, nameof(VhostIoctls.VHOST_VDPA_GET_AS_NUM));

    /// <summary>Reads the group a queue belongs to (<c>VHOST_VDPA_GET_VRING_GROUP</c>).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The group.</returns>
    /// <exception cref="VhostException">The kernel refused (<c>EINVAL</c> for a queue that does not exist).</exception>
    public uint GetVringGroup(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        return GetVringState(VhostIoctls.VHOST_VDPA_GET_VRING_GROUP, nameof(VhostIoctls.VHOST_VDPA_GET_VRING_GROUP), queueIndex, 0);
    }

    /// <summary>Reads the group of a queue's descriptor table (<c>VHOST_VDPA_GET_VRING_DESC_GROUP</c>; needs <see cref="VhostBackendFeatures.DescriptorAsid"/> acked).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The group.</returns>
    /// <exception cref="VhostException"><c>EOPNOTSUPP</c> when DESC_ASID is not acked or not offered; <c>ENOTTY</c> on kernels before 6.7.</exception>
    public uint GetVringDescriptorGroup(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        return GetVringState(VhostIoctls.VHOST_VDPA_GET_VRING_DESC_GROUP, nameof(VhostIoctls.VHOST_VDPA_GET_VRING_DESC_GROUP), queueIndex, 0, "VHOST_VDPA_GET_VRING_DESC_GROUP needs Linux 6.7+");
    }

    /// <summary>Puts a group in an address space (<c>VHOST_VDPA_SET_GROUP_ASID</c>).</summary>
    /// <param name="group">The group (below <see cref="GetGroupCount"/>).</param>
    /// <param name="asid">The address space (below <see cref="GetAddressSpaceCount"/>).</param>
    /// <exception cref="VhostException">The kernel refused (<c>EINVAL</c> for a group or address space that does not exist, <c>EOPNOTSUPP</c> when the device cannot).</exception>
    public void SetGroupAsid(uint group, uint asid)
    {
        var state = new Interop.vhost_vring_state { index = group, num = asid };
        Ioctl(VhostIoctls.VHOST_VDPA_SET_GROUP_ASID, ref state, nameof(VhostIoctls.VHOST_VDPA_SET_GROUP_ASID));
    }

    /// <summary>Suspends the device (<c>VHOST_VDPA_SUSPEND</c>; needs <see cref="VhostBackendFeatures.Suspend"/>).</summary>
    /// <exception cref="VhostException"><c>EOPNOTSUPP</c> when the device cannot suspend.</exception>
    public void Suspend() => IoctlNone(VhostIoctls.VHOST_VDPA_SUSPEND, nameof(VhostIoctls.VHOST_VDPA_SUSPEND));

    /// <summary>Resumes a suspended device (<c>VHOST_VDPA_RESUME</c>; needs <see cref="VhostBackendFeatures.Resume"/>).</summary>
    /// <exception cref="VhostException"><c>EOPNOTSUPP</c> when the device cannot resume; <c>ENOTTY</c> on kernels before 6.4.</exception>
    public void Resume() => IoctlNone(VhostIoctls.VHOST_VDPA_RESUME, nameof(VhostIoctls.VHOST_VDPA_RESUME), "VHOST_VDPA_RESUME needs Linux 6.4+");

    /// <summary>Maps memory for the device (an IOTLB UPDATE message written to the fd).</summary>
    /// <param name="iova">The I/O virtual address.</param>
    /// <param name="size">The length in bytes.</param>
    /// <param name="userAddress">The VMM's address of the memory (for VDUSE: a <c>MAP_SHARED</c> file-backed mapping).</param>
    /// <param name="readOnly">Whether the device may only read.</param>
    /// <param name="asid">The address space (non-zero only with <see cref="VhostBackendFeatures.IotlbAsid"/> acked).</param>
    /// <exception cref="ArgumentException">Zero size, a wrapping range, a range outside <see cref="GetIovaRange"/>, or an address space without ASID support.</exception>
    /// <exception cref="VhostException">The kernel refused (<c>EEXIST</c> for an overlapping mapping, <c>EFAULT</c> for unmapped user memory).</exception>
    public void DmaMap(ulong iova, ulong size, ulong userAddress, bool readOnly = false, uint asid = 0)
        => DmaMap([new VdpaDmaMapping(iova, size, userAddress, readOnly)], asid);

    /// <summary>
    /// Maps several ranges; with <see cref="VhostBackendFeatures.IotlbBatch"/> acked they go in one
    /// batch (BATCH_BEGIN, the updates, BATCH_END), so the device updates its mappings once.
    /// </summary>
    /// <param name="mappings">The ranges.</param>
    /// <param name="asid">The address space (non-zero only with <see cref="VhostBackendFeatures.IotlbAsid"/> acked).</param>
    /// <exception cref="ArgumentException">A bad range (see <see cref="DmaMap(ulong, ulong, ulong, bool, uint)"/>).</exception>
    /// <exception cref="VhostException">The kernel refused an update.</exception>
    public void DmaMap(ReadOnlySpan<VdpaDmaMapping> mappings, uint asid = 0)
    {
        CheckAsid(asid);
        foreach (VdpaDmaMapping m in mappings)
        {
            CheckRange(m.Iova, m.Size, null);
            if (m.UserAddress == 0 || m.UserAddress > ulong.MaxValue - (m.Size - 1))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"the user address 0x{m.UserAddress:X} (+0x{m.Size:X}) is null or wraps"), nameof(mappings));
            }
        }

        VdpaIovaRange range = _iovaRange ?? GetIovaRange();
        foreach (VdpaDmaMapping m in mappings)
        {
            CheckRange(m.Iova, m.Size, range);
        }

        lock (_dmaLock)
        {
            bool batch = mappings.Length > 1 && (AckedBackendFeatures & VhostBackendFeatures.IotlbBatch) != 0;
            if (batch)
            {
                WriteIotlb(VhostIotlbType.BatchBegin, 0, 0, 0, VhostIotlbAccess.None, asid);
            }

            try
            {
                foreach (VdpaDmaMapping m in mappings)
                {
                    WriteIotlb(VhostIotlbType.Update, m.Iova, m.Size, m.UserAddress, m.ReadOnly ? VhostIotlbAccess.ReadOnly : VhostIotlbAccess.ReadWrite, asid);
                }
            }
            finally
            {
                if (batch)
                {
                    WriteIotlb(VhostIotlbType.BatchEnd, 0, 0, 0, VhostIotlbAccess.None, asid);
                }
            }
        }
    }

    /// <summary>Unmaps a range (an IOTLB INVALIDATE message written to the fd).</summary>
    /// <param name="iova">The I/O virtual address.</param>
    /// <param name="size">The length in bytes.</param>
    /// <param name="asid">The address space.</param>
    /// <exception cref="ArgumentException">Zero size, a wrapping range, or an address space without ASID support.</exception>
    /// <exception cref="VhostException">The kernel refused.</exception>
    public void DmaUnmap(ulong iova, ulong size, uint asid = 0)
    {
        CheckAsid(asid);
        if (size == 0 || iova > ulong.MaxValue - (size - 1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"the IOVA range 0x{iova:X} +0x{size:X} is empty or wraps"), nameof(size));
        }

        lock (_dmaLock)
        {
            WriteIotlb(VhostIotlbType.Invalidate, iova, size, 0, VhostIotlbAccess.None, asid);
        }
    }

    /// <summary>
    /// The no-vIOMMU shortcut: maps every region at IOVA = guest physical address (read-write, address
    /// space 0) after unmapping the regions of the previous table; ring addresses and descriptors are
    /// then guest physical addresses. <c>VHOST_SET_MEM_TABLE</c> itself is not used by vhost-vdpa.
    /// </summary>
    /// <param name="regions">The regions (fds and mmap offsets are not used).</param>
    /// <exception cref="ArgumentException">No regions, an empty, wrapping or overlapping region.</exception>
    /// <exception cref="VhostException">An IOTLB update was refused.</exception>
    public override void SetMemoryTable(IReadOnlyList<VhostMemoryRegionInfo> regions)
    {
        MemoryRange[] table = ValidateMemoryTable(regions);
        foreach ((ulong gpa, ulong size, _) in MemoryTable)
        {
            DmaUnmap(gpa, size);
        }

        RecordMemoryTable([]);
        DmaMap(Array.ConvertAll(table, r => new VdpaDmaMapping(r.GuestPhysicalAddress, r.Size, r.UserAddress)));
        RecordMemoryTable(table);
    }

    /// <summary>Sets the IOVA range without the ioctl (tests drive a non-vhost fd).</summary>
    internal void AssumeIovaRange(VdpaIovaRange range) => _iovaRange = range;

    /// <summary>Ring addresses of a vDPA device are IOVAs: passed through unchanged.</summary>
    private protected override ulong TranslateRingAddress(ulong address, ulong length, string what) => address;

    /// <summary>Builds the 72-byte IOTLB message for the acked backend features (internal for tests).</summary>
    internal static unsafe byte[] BuildIotlbMessage(VhostBackendFeatures acked, VhostIotlbType type, ulong iova, ulong size, ulong userAddress, VhostIotlbAccess access, uint asid)
    {
        var iotlb = new Interop.vhost_iotlb_msg { iova = iova, size = size, uaddr = userAddress, perm = (byte)access, type = (byte)type };
        byte[] bytes = new byte[sizeof(Interop.vhost_msg_v2)];
        if ((acked & VhostBackendFeatures.IotlbMessageV2) != 0)
        {
            MemoryMarshal.Write(bytes, new Interop.vhost_msg_v2 { type = Interop.VHOST_IOTLB_MSG_V2, asid = asid, iotlb = iotlb });
        }
        else
        {
            if (asid != 0)
            {
                throw new ArgumentException("an address space id needs VHOST_BACKEND_F_IOTLB_MSG_V2 acked", nameof(asid));
            }

            MemoryMarshal.Write(bytes, new Interop.vhost_msg { type = Interop.VHOST_IOTLB_MSG, iotlb = iotlb });
        }

        return bytes;
    }

    private void WriteIotlb(VhostIotlbType type, ulong iova, ulong size, ulong userAddress, VhostIotlbAccess access, uint asid)
    {
        byte[] message = BuildIotlbMessage(AckedBackendFeatures, type, iova, size, userAddress, access, asid);
        int n = Fd.TryWrite(Handle, message, out Interop.Error errno);
        if (n < 0)
        {
            throw new VhostException((Errno)errno, $"write(IOTLB {type})", string.Create(CultureInfo.InvariantCulture, $"iova 0x{iova:X} size 0x{size:X} asid {asid}"));
        }

        if (n != message.Length)
        {
            throw new VhostException(Errno.EIO, $"write(IOTLB {type})", $"short write: {n} of {message.Length} bytes");
        }
    }

    private void CheckAsid(uint asid)
    {
        if (asid != 0 && (AckedBackendFeatures & VhostBackendFeatures.IotlbAsid) == 0)
        {
            throw new ArgumentException("a non-zero address space id needs VHOST_BACKEND_F_IOTLB_ASID acked", nameof(asid));
        }
    }

    private static void CheckRange(ulong iova, ulong size, VdpaIovaRange? range)
    {
        if (size == 0 || iova > ulong.MaxValue - (size - 1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"the IOVA range 0x{iova:X} +0x{size:X} is empty or wraps"), "mappings");
        }

        if (range is { } r && !r.Contains(iova, size))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"the IOVA range 0x{iova:X} +0x{size:X} is outside the device's [0x{range!.Value.First:X}, 0x{range!.Value.Last:X}]"), "mappings");
        }
    }

    private static byte[] ConfigMessage(uint offset, int length, string parameter)
    {
        if (length is 0 or > 0x10000)
        {
            throw new ArgumentException("a config access is 1 byte to 64 KiB", parameter);
        }

        if (offset > uint.MaxValue - (uint)length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "the config range wraps");
        }

        byte[] message = new byte[Marshal.SizeOf<Interop.vhost_vdpa_config>() + length];
        MemoryMarshal.Write(message, new Interop.vhost_vdpa_config { off = offset, len = (uint)length });
        return message;
    }}
