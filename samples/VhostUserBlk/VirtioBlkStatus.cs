namespace VhostUserBlk;

/// <summary>The status byte that ends every virtio-blk request (virtio 1.2 §5.2.6).</summary>
public enum VirtioBlkStatus : byte
{
    /// <summary>VIRTIO_BLK_S_OK.</summary>
    Ok = 0,

    /// <summary>VIRTIO_BLK_S_IOERR: a malformed or failed request.</summary>
    IoError = 1,

    /// <summary>VIRTIO_BLK_S_UNSUPP: a request type or flag the device does not implement.</summary>
    Unsupported = 2,
}
