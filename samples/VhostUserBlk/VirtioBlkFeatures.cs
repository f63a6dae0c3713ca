namespace VhostUserBlk;

/// <summary>virtio-blk feature bits (virtio 1.2 §5.2.3) and the transport bits this device offers.</summary>
[Flags]
public enum VirtioBlkFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>VIRTIO_BLK_F_SIZE_MAX: <c>size_max</c> is the largest segment.</summary>
    SizeMax = 1UL << 1,

    /// <summary>VIRTIO_BLK_F_SEG_MAX: <c>seg_max</c> is the most segments per request.</summary>
    SegMax = 1UL << 2,

    /// <summary>VIRTIO_BLK_F_RO: the device is read-only.</summary>
    ReadOnly = 1UL << 5,

    /// <summary>VIRTIO_BLK_F_BLK_SIZE: <c>blk_size</c> is the logical block size.</summary>
    BlockSize = 1UL << 6,

    /// <summary>VIRTIO_BLK_F_FLUSH: the FLUSH command.</summary>
    Flush = 1UL << 9,

    /// <summary>VIRTIO_BLK_F_CONFIG_WCE: the driver may switch write-back/write-through in <c>writeback</c>.</summary>
    ConfigWce = 1UL << 11,

    /// <summary>VIRTIO_BLK_F_MQ: <c>num_queues</c> request queues.</summary>
    MultiQueue = 1UL << 12,

    /// <summary>VIRTIO_BLK_F_DISCARD: the DISCARD command.</summary>
    Discard = 1UL << 13,

    /// <summary>VIRTIO_BLK_F_WRITE_ZEROES: the WRITE_ZEROES command.</summary>
    WriteZeroes = 1UL << 14,

    /// <summary>VIRTIO_RING_F_INDIRECT_DESC: indirect descriptor tables.</summary>
    RingIndirectDescriptors = 1UL << 28,

    /// <summary>VIRTIO_RING_F_EVENT_IDX: used_event / avail_event notification suppression.</summary>
    RingEventIndex = 1UL << 29,

    /// <summary>VIRTIO_F_VERSION_1.</summary>
    Version1 = 1UL << 32,
}
