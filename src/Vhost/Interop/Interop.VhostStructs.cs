using System.Runtime.InteropServices;

/// <summary>
/// The structs of <c>&lt;linux/vhost_types.h&gt;</c> that the kernel vhost and vhost-vdpa ioctls
/// take, under their C names (x86_64/aarch64 LP64 layout; tests assert every size and offset and
/// cross-check them against the machine's C headers).
/// </summary>
internal static unsafe partial class Interop
{
    /// <summary><c>VHOST_FILE_UNBIND</c>: the fd value that detaches an eventfd or a backend.</summary>
    internal const int VHOST_FILE_UNBIND = -1;

    /// <summary><c>VHOST_IOTLB_MSG</c>: the <c>type</c> of a <see cref="vhost_msg"/>.</summary>
    internal const int VHOST_IOTLB_MSG = 0x1;

    /// <summary><c>VHOST_IOTLB_MSG_V2</c>: the <c>type</c> of a <see cref="vhost_msg_v2"/>.</summary>
    internal const uint VHOST_IOTLB_MSG_V2 = 0x2;

    /// <summary><c>VHOST_VRING_F_LOG</c>: bit number of the log flag in <see cref="vhost_vring_addr.flags"/>.</summary>
    internal const int VHOST_VRING_F_LOG = 0;

    /// <summary><c>VHOST_VRING_LITTLE_ENDIAN</c>.</summary>
    internal const int VHOST_VRING_LITTLE_ENDIAN = 0;

    /// <summary><c>VHOST_VRING_BIG_ENDIAN</c>.</summary>
    internal const int VHOST_VRING_BIG_ENDIAN = 1;

    /// <summary><c>struct vhost_vring_state</c>: a queue index and a number (size, base, enable, group, ...).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_vring_state
    {
        public uint index;
        public uint num;
    }

    /// <summary><c>struct vhost_vring_file</c>: a queue index and an fd (-1 unbinds).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_vring_file
    {
        public uint index;
        public int fd;
    }

    /// <summary><c>struct vhost_vring_addr</c>: ring addresses (user addresses for kernel vhost, IOVAs for vDPA).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_vring_addr
    {
        public uint index;
        public uint flags;
        public ulong desc_user_addr;
        public ulong used_user_addr;
        public ulong avail_user_addr;
        public ulong log_guest_addr;
    }

    /// <summary><c>struct vhost_memory</c> without its flexible <c>regions[]</c> array (which follows it).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_memory
    {
        public uint nregions;
        public uint padding;
    }

    /// <summary><c>struct vhost_memory_region</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_memory_region
    {
        public ulong guest_phys_addr;
        public ulong memory_size;
        public ulong userspace_addr;
        public ulong flags_padding;
    }

    /// <summary><c>struct vhost_iotlb_msg</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_iotlb_msg
    {
        public ulong iova;
        public ulong size;
        public ulong uaddr;
        public byte perm;
        public byte type;
    }

    /// <summary><c>struct vhost_msg</c>: the IOTLB message written to the fd before MSG_V2 is acked.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    internal struct vhost_msg
    {
        [FieldOffset(0)]
        public int type;
        [FieldOffset(8)]
        public fixed byte padding[64];
        [FieldOffset(8)]
        public vhost_iotlb_msg iotlb;
    }

    /// <summary><c>struct vhost_msg_v2</c>: the IOTLB message with an address space id (after MSG_V2 is acked).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    internal struct vhost_msg_v2
    {
        [FieldOffset(0)]
        public uint type;
        [FieldOffset(4)]
        public uint asid;
        [FieldOffset(8)]
        public fixed byte padding[64];
        [FieldOffset(8)]
        public vhost_iotlb_msg iotlb;
    }

    /// <summary><c>struct vhost_scsi_target</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_scsi_target
    {
        /// <summary>The size of <see cref="vhost_wwpn"/> (<c>VHOST_SCSI_WWPN_LEN</c> is 224 in the UAPI struct).</summary>
        internal const int WwpnLength = 224;

        public int abi_version;
        public fixed byte vhost_wwpn[WwpnLength];
        public ushort vhost_tpgt;
        public ushort reserved;
    }

    /// <summary><c>struct vhost_vdpa_config</c> without its flexible <c>buf[]</c> (which follows it).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_vdpa_config
    {
        public uint off;
        public uint len;
    }

    /// <summary><c>struct vhost_vdpa_iova_range</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_vdpa_iova_range
    {
        public ulong first;
        public ulong last;
    }

    /// <summary><c>struct vhost_worker_state</c> (Linux 6.4+).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_worker_state
    {
        public uint worker_id;
    }

    /// <summary><c>struct vhost_vring_worker</c> (Linux 6.4+).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct vhost_vring_worker
    {
        public uint index;
        public uint worker_id;
    }
}
