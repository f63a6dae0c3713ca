namespace VhostUserBackend.Devices.Blk;

/// <summary>
/// The virtio-blk device feature bits (VIRTIO 1.3 §5.2.3). The ring and transport bits every
/// device shares are <see cref="Vhost.Virtio.VirtioFeatures"/>; a device offers both, as one <c>ulong</c>.
/// </summary>
[Flags]
public enum VirtioBlkFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>Bit 1 <c>VIRTIO_BLK_F_SIZE_MAX</c>: <see cref="VirtioBlkConfig.SizeMax"/> is the largest segment.</summary>
    SizeMax = 1UL << 1,

    /// <summary>Bit 2 <c>VIRTIO_BLK_F_SEG_MAX</c>: <see cref="VirtioBlkConfig.SegMax"/> is the most segments per request.</summary>
    SegMax = 1UL << 2,

    /// <summary>Bit 4 <c>VIRTIO_BLK_F_GEOMETRY</c>: the geometry fields are valid.</summary>
    Geometry = 1UL << 4,

    /// <summary>Bit 5 <c>VIRTIO_BLK_F_RO</c>: the device is read-only.</summary>
    ReadOnly = 1UL << 5,

    /// <summary>Bit 6 <c>VIRTIO_BLK_F_BLK_SIZE</c>: <see cref="VirtioBlkConfig.BlockSize"/> is the logical block size.</summary>
    BlockSize = 1UL << 6,

    /// <summary>Bit 9 <c>VIRTIO_BLK_F_FLUSH</c>: the FLUSH command.</summary>
    Flush = 1UL << 9,

    /// <summary>Bit 10 <c>VIRTIO_BLK_F_TOPOLOGY</c>: the topology fields are valid.</summary>
    Topology = 1UL << 10,

    /// <summary>Bit 11 <c>VIRTIO_BLK_F_CONFIG_WCE</c>: the driver may switch between write-back and write-through in <see cref="VirtioBlkConfig.Writeback"/>.</summary>
    ConfigWce = 1UL << 11,

    /// <summary>Bit 12 <c>VIRTIO_BLK_F_MQ</c>: <see cref="VirtioBlkConfig.NumQueues"/> request queues.</summary>
    MultiQueue = 1UL << 12,

    /// <summary>Bit 13 <c>VIRTIO_BLK_F_DISCARD</c>: the DISCARD command.</summary>
    Discard = 1UL << 13,

    /// <summary>Bit 14 <c>VIRTIO_BLK_F_WRITE_ZEROES</c>: the WRITE_ZEROES command.</summary>
    WriteZeroes = 1UL << 14,

    /// <summary>Bit 15 <c>VIRTIO_BLK_F_LIFETIME</c>: the GET_LIFETIME command.</summary>
    Lifetime = 1UL << 15,

    /// <summary>Bit 16 <c>VIRTIO_BLK_F_SECURE_ERASE</c>: the SECURE_ERASE command.</summary>
    SecureErase = 1UL << 16,

    /// <summary>Bit 17 <c>VIRTIO_BLK_F_ZONED</c>: a zoned block device.</summary>
    Zoned = 1UL << 17,
}
