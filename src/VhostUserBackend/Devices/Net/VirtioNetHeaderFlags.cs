namespace VhostUserBackend.Devices.Net;

/// <summary>The <c>flags</c> byte of <see cref="VirtioNetHeader"/>.</summary>
[Flags]
public enum VirtioNetHeaderFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary><c>VIRTIO_NET_HDR_F_NEEDS_CSUM</c>: the checksum from <see cref="VirtioNetHeader.CsumStart"/> to the end is still to be computed and stored at <c>csum_start + csum_offset</c>.</summary>
    NeedsCsum = 1,

    /// <summary><c>VIRTIO_NET_HDR_F_DATA_VALID</c> (RX only): the checksum was already checked.</summary>
    DataValid = 2,

    /// <summary><c>VIRTIO_NET_HDR_F_RSC_INFO</c> (RX only): coalescing information is in the checksum fields.</summary>
    RscInfo = 4,
}
