namespace VhostProbe.Devices;

/// <summary>virtio-blk request types (virtio 1.2 §5.2.6).</summary>
public enum VirtioBlkRequestType : uint
{
    /// <summary>VIRTIO_BLK_T_IN: read.</summary>
    In = 0,

    /// <summary>VIRTIO_BLK_T_OUT: write.</summary>
    Out = 1,

    /// <summary>VIRTIO_BLK_T_FLUSH.</summary>
    Flush = 4,

    /// <summary>VIRTIO_BLK_T_GET_ID: 20-byte serial.</summary>
    GetId = 8,
}
