namespace VhostUserNet;

/// <summary>The <c>flags</c> byte of <c>struct virtio_net_hdr</c>.</summary>
[Flags]
internal enum VirtioNetHeaderFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum from csum_start to the end is still to be computed and stored at csum_start + csum_offset.</summary>
    NeedsCsum = 1,

    /// <summary>VIRTIO_NET_HDR_F_DATA_VALID (RX only): the checksum was already checked.</summary>
    DataValid = 2,

    /// <summary>VIRTIO_NET_HDR_F_RSC_INFO (RX only).</summary>
    RscInfo = 4,
}
