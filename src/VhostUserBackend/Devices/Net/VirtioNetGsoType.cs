namespace VhostUserBackend.Devices.Net;

/// <summary>The <c>gso_type</c> byte of <see cref="VirtioNetHeader"/> (<see cref="Ecn"/> may be or-ed into a type).</summary>
public enum VirtioNetGsoType : byte
{
    /// <summary><c>VIRTIO_NET_HDR_GSO_NONE</c>: not a GSO frame.</summary>
    None = 0,

    /// <summary><c>VIRTIO_NET_HDR_GSO_TCPV4</c>.</summary>
    TcpV4 = 1,

    /// <summary><c>VIRTIO_NET_HDR_GSO_UDP</c> (UFO).</summary>
    Udp = 3,

    /// <summary><c>VIRTIO_NET_HDR_GSO_TCPV6</c>.</summary>
    TcpV6 = 4,

    /// <summary><c>VIRTIO_NET_HDR_GSO_UDP_L4</c> (USO).</summary>
    UdpL4 = 5,

    /// <summary><c>VIRTIO_NET_HDR_GSO_ECN</c>: a bit or-ed into the type (the TCP frame has ECN set).</summary>
    Ecn = 0x80,
}
