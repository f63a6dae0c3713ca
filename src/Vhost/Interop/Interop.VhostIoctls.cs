/// <summary>
/// The vhost and vhost-vdpa ioctl request numbers of <c>&lt;linux/vhost.h&gt;</c> (type 0xAF),
/// each a compile-time constant built with <see cref="IoctlEncoding"/>; the C macro is in the
/// comment. Tests check every value against the known encodings.
/// </summary>
internal static class VhostIoctls
{
    /// <summary><c>VHOST_VIRTIO</c>, the ioctl type byte.</summary>
    internal const uint VhostVirtio = 0xAF;

    private const uint T = VhostVirtio << IoctlEncoding.TypeShift;
    private const int S = IoctlEncoding.SizeShift;
    private const uint R = IoctlEncoding.Read;
    private const uint W = IoctlEncoding.Write;
    private const uint RW = IoctlEncoding.ReadWrite;
    private const uint N = IoctlEncoding.None;

    // Argument sizes (asserted against the struct sizes in tests).
    private const uint U8 = 1, U16 = 2, Int = 4, U32 = 4, U64 = 8;
    private const uint VringState = 8, VringFile = 8, VringAddr = 40, Memory = 8, ScsiTarget = 232;
    private const uint VdpaConfig = 8, IovaRange = 16, WorkerState = 4, VringWorker = 8;

    /// <summary>_IOR(VHOST_VIRTIO, 0x00, __u64)</summary>
    internal const uint VHOST_GET_FEATURES = R | T | (0x00 << 0) | (U64 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x00, __u64)</summary>
    internal const uint VHOST_SET_FEATURES = W | T | (0x00 << 0) | (U64 << S);
    /// <summary>_IO(VHOST_VIRTIO, 0x01)</summary>
    internal const uint VHOST_SET_OWNER = N | T | 0x01;
    /// <summary>_IO(VHOST_VIRTIO, 0x02)</summary>
    internal const uint VHOST_RESET_OWNER = N | T | 0x02;
    /// <summary>_IOW(VHOST_VIRTIO, 0x03, struct vhost_memory)</summary>
    internal const uint VHOST_SET_MEM_TABLE = W | T | 0x03 | (Memory << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x04, __u64)</summary>
    internal const uint VHOST_SET_LOG_BASE = W | T | 0x04 | (U64 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x07, int)</summary>
    internal const uint VHOST_SET_LOG_FD = W | T | 0x07 | (Int << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x08, struct vhost_worker_state)</summary>
    internal const uint VHOST_NEW_WORKER = R | T | 0x08 | (WorkerState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x09, struct vhost_worker_state)</summary>
    internal const uint VHOST_FREE_WORKER = W | T | 0x09 | (WorkerState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x10, struct vhost_vring_state)</summary>
    internal const uint VHOST_SET_VRING_NUM = W | T | 0x10 | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x11, struct vhost_vring_addr)</summary>
    internal const uint VHOST_SET_VRING_ADDR = W | T | 0x11 | (VringAddr << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x12, struct vhost_vring_state)</summary>
    internal const uint VHOST_SET_VRING_BASE = W | T | 0x12 | (VringState << S);
    /// <summary>_IOWR(VHOST_VIRTIO, 0x12, struct vhost_vring_state)</summary>
    internal const uint VHOST_GET_VRING_BASE = RW | T | 0x12 | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x13, struct vhost_vring_state)</summary>
    internal const uint VHOST_SET_VRING_ENDIAN = W | T | 0x13 | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x14, struct vhost_vring_state)</summary>
    internal const uint VHOST_GET_VRING_ENDIAN = W | T | 0x14 | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x15, struct vhost_vring_worker)</summary>
    internal const uint VHOST_ATTACH_VRING_WORKER = W | T | 0x15 | (VringWorker << S);
    /// <summary>_IOWR(VHOST_VIRTIO, 0x16, struct vhost_vring_worker)</summary>
    internal const uint VHOST_GET_VRING_WORKER = RW | T | 0x16 | (VringWorker << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x20, struct vhost_vring_file)</summary>
    internal const uint VHOST_SET_VRING_KICK = W | T | 0x20 | (VringFile << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x21, struct vhost_vring_file)</summary>
    internal const uint VHOST_SET_VRING_CALL = W | T | 0x21 | (VringFile << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x22, struct vhost_vring_file)</summary>
    internal const uint VHOST_SET_VRING_ERR = W | T | 0x22 | (VringFile << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x23, struct vhost_vring_state)</summary>
    internal const uint VHOST_SET_VRING_BUSYLOOP_TIMEOUT = W | T | 0x23 | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x24, struct vhost_vring_state)</summary>
    internal const uint VHOST_GET_VRING_BUSYLOOP_TIMEOUT = W | T | 0x24 | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x25, __u64)</summary>
    internal const uint VHOST_SET_BACKEND_FEATURES = W | T | 0x25 | (U64 << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x26, __u64)</summary>
    internal const uint VHOST_GET_BACKEND_FEATURES = R | T | 0x26 | (U64 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x30, struct vhost_vring_file)</summary>
    internal const uint VHOST_NET_SET_BACKEND = W | T | 0x30 | (VringFile << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x40, struct vhost_scsi_target)</summary>
    internal const uint VHOST_SCSI_SET_ENDPOINT = W | T | 0x40 | (ScsiTarget << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x41, struct vhost_scsi_target)</summary>
    internal const uint VHOST_SCSI_CLEAR_ENDPOINT = W | T | 0x41 | (ScsiTarget << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x42, int)</summary>
    internal const uint VHOST_SCSI_GET_ABI_VERSION = W | T | 0x42 | (Int << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x43, __u32)</summary>
    internal const uint VHOST_SCSI_SET_EVENTS_MISSED = W | T | 0x43 | (U32 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x44, __u32)</summary>
    internal const uint VHOST_SCSI_GET_EVENTS_MISSED = W | T | 0x44 | (U32 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x60, __u64)</summary>
    internal const uint VHOST_VSOCK_SET_GUEST_CID = W | T | 0x60 | (U64 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x61, int)</summary>
    internal const uint VHOST_VSOCK_SET_RUNNING = W | T | 0x61 | (Int << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x70, __u32)</summary>
    internal const uint VHOST_VDPA_GET_DEVICE_ID = R | T | 0x70 | (U32 << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x71, __u8)</summary>
    internal const uint VHOST_VDPA_GET_STATUS = R | T | 0x71 | (U8 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x72, __u8)</summary>
    internal const uint VHOST_VDPA_SET_STATUS = W | T | 0x72 | (U8 << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x73, struct vhost_vdpa_config)</summary>
    internal const uint VHOST_VDPA_GET_CONFIG = R | T | 0x73 | (VdpaConfig << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x74, struct vhost_vdpa_config)</summary>
    internal const uint VHOST_VDPA_SET_CONFIG = W | T | 0x74 | (VdpaConfig << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x75, struct vhost_vring_state)</summary>
    internal const uint VHOST_VDPA_SET_VRING_ENABLE = W | T | 0x75 | (VringState << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x76, __u16)</summary>
    internal const uint VHOST_VDPA_GET_VRING_NUM = R | T | 0x76 | (U16 << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x77, int)</summary>
    internal const uint VHOST_VDPA_SET_CONFIG_CALL = W | T | 0x77 | (Int << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x78, struct vhost_vdpa_iova_range)</summary>
    internal const uint VHOST_VDPA_GET_IOVA_RANGE = R | T | 0x78 | (IovaRange << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x79, __u32)</summary>
    internal const uint VHOST_VDPA_GET_CONFIG_SIZE = R | T | 0x79 | (U32 << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x7A, unsigned int)</summary>
    internal const uint VHOST_VDPA_GET_AS_NUM = R | T | 0x7A | (U32 << S);
    /// <summary>_IOWR(VHOST_VIRTIO, 0x7B, struct vhost_vring_state)</summary>
    internal const uint VHOST_VDPA_GET_VRING_GROUP = RW | T | 0x7B | (VringState << S);
    /// <summary>_IOW(VHOST_VIRTIO, 0x7C, struct vhost_vring_state)</summary>
    internal const uint VHOST_VDPA_SET_GROUP_ASID = W | T | 0x7C | (VringState << S);
    /// <summary>_IO(VHOST_VIRTIO, 0x7D)</summary>
    internal const uint VHOST_VDPA_SUSPEND = N | T | 0x7D;
    /// <summary>_IO(VHOST_VIRTIO, 0x7E)</summary>
    internal const uint VHOST_VDPA_RESUME = N | T | 0x7E;
    /// <summary>_IOWR(VHOST_VIRTIO, 0x7F, struct vhost_vring_state)</summary>
    internal const uint VHOST_VDPA_GET_VRING_DESC_GROUP = RW | T | 0x7F | (VringState << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x80, __u32)</summary>
    internal const uint VHOST_VDPA_GET_VQS_COUNT = R | T | 0x80 | (U32 << S);
    /// <summary>_IOR(VHOST_VIRTIO, 0x81, __u32)</summary>
    internal const uint VHOST_VDPA_GET_GROUP_NUM = R | T | 0x81 | (U32 << S);
    /// <summary>_IOWR(VHOST_VIRTIO, 0x82, struct vhost_vring_state)</summary>
    internal const uint VHOST_VDPA_GET_VRING_SIZE = RW | T | 0x82 | (VringState << S);
}
