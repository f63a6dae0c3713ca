namespace VhostUserBackend.Devices.Blk;

/// <summary>The virtio-blk request types (<c>virtio_blk_req.type</c>, VIRTIO 1.3 §5.2.6); the zoned ones are not listed.</summary>
public enum VirtioBlkRequestType : uint
{
    /// <summary><c>VIRTIO_BLK_T_IN</c>: read sectors into the device-writable data buffers.</summary>
    In = 0,

    /// <summary><c>VIRTIO_BLK_T_OUT</c>: write the device-readable data buffers to sectors.</summary>
    Out = 1,

    /// <summary><c>VIRTIO_BLK_T_FLUSH</c>: make completed writes durable.</summary>
    Flush = 4,

    /// <summary><c>VIRTIO_BLK_T_GET_ID</c>: the device id string (at most <see cref="VirtioBlkRequest.IdBytes"/> bytes).</summary>
    GetId = 8,

    /// <summary><c>VIRTIO_BLK_T_GET_LIFETIME</c>: the device's wear estimates (<see cref="VirtioBlkFeatures.Lifetime"/>).</summary>
    GetLifetime = 10,

    /// <summary><c>VIRTIO_BLK_T_DISCARD</c>: ranges (<see cref="VirtioBlkDiscardWriteZeroes"/>) the driver no longer needs.</summary>
    Discard = 11,

    /// <summary><c>VIRTIO_BLK_T_WRITE_ZEROES</c>: ranges (<see cref="VirtioBlkDiscardWriteZeroes"/>) to read back as zeroes.</summary>
    WriteZeroes = 13,

    /// <summary><c>VIRTIO_BLK_T_SECURE_ERASE</c>: ranges (<see cref="VirtioBlkDiscardWriteZeroes"/>) to erase securely.</summary>
    SecureErase = 14,
}
