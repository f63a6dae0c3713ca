namespace VhostProbe.Devices;

/// <summary>virtio-blk request status byte.</summary>
public enum VirtioBlkStatus : byte
{
    /// <summary>VIRTIO_BLK_S_OK.</summary>
    Ok = 0,

    /// <summary>VIRTIO_BLK_S_IOERR.</summary>
    IoError = 1,

    /// <summary>VIRTIO_BLK_S_UNSUPP.</summary>
    Unsupported = 2,

    /// <summary>Not written by the device (the probe's sentinel).</summary>
    NotWritten = 0xFF,
}
