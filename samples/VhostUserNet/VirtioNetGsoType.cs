namespace VhostUserNet;

/// <summary>The <c>gso_type</c> byte of <c>struct virtio_net_hdr</c> (the ECN bit may be or-ed in).</summary>
internal enum VirtioNetGsoType : byte
{
    /// <summary>VIRTIO_NET_HDR_GSO_NONE.</summary>
    None = 0,

    /// <summary>VIRTIO_NET_HDR_GSO_TCPV4.</summary>
    TcpV4 = 1,

    /// <summary>VIRTIO_NET_HDR_GSO_UDP (UFO).</summary>
    Udp = 3,

    /// <summary>VIRTIO_NET_HDR_GSO_TCPV6.</summary>
    TcpV6 = 4,

    /// <summary>VIRTIO_NET_HDR_GSO_UDP_L4 (USO; never negotiated here).</summary>
    UdpL4 = 5,

    /// <summary>VIRTIO_NET_HDR_GSO_ECN (a bit or-ed into the type).</summary>
    Ecn = 0x80,
}
