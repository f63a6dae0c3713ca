namespace VhostUserBlk;

/// <summary>virtio-blk request types (virtio 1.2 §5.2.6, <c>virtio_blk_req.type</c>).</summary>
public enum VirtioBlkRequestType : uint
{
    /// <summary>VIRTIO_BLK_T_IN: read sectors into the writable buffers.</summary>
    In = 0,

    /// <summary>VIRTIO_BLK_T_OUT: write the readable buffers to sectors.</summary>
    Out = 1,

    /// <summary>VIRTIO_BLK_T_FLUSH: make completed writes durable.</summary>
    Flush = 4,

    /// <summary>VIRTIO_BLK_T_GET_ID: the 20-byte device id (serial).</summary>
    GetId = 8,

    /// <summary>VIRTIO_BLK_T_GET_LIFETIME (not offered: answered UNSUPP).</summary>
    GetLifetime = 10,

    /// <summary>VIRTIO_BLK_T_DISCARD: ranges the driver no longer needs.</summary>
    Discard = 11,

    /// <summary>VIRTIO_BLK_T_WRITE_ZEROES: ranges to read back as zeroes.</summary>
    WriteZeroes = 13,

    /// <summary>VIRTIO_BLK_T_SECURE_ERASE (not offered: answered UNSUPP).</summary>
    SecureErase = 14,
}
