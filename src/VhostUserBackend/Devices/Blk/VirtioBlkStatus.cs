namespace VhostUserBackend.Devices.Blk;

/// <summary>The status byte the device writes at the end of every virtio-blk request (VIRTIO 1.3 §5.2.6).</summary>
public enum VirtioBlkStatus : byte
{
    /// <summary><c>VIRTIO_BLK_S_OK</c>: success.</summary>
    Ok = 0,

    /// <summary><c>VIRTIO_BLK_S_IOERR</c>: a malformed request or a failed operation.</summary>
    IoError = 1,

    /// <summary><c>VIRTIO_BLK_S_UNSUPP</c>: a request type or flag the device does not implement.</summary>
    Unsupported = 2,
}
