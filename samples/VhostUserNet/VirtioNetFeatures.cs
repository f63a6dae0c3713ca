namespace VhostUserNet;

/// <summary>virtio-net device feature bits (virtio 1.2 section 5.1.3) and the ring bits the sample offers.</summary>
[Flags]
internal enum VirtioNetFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>VIRTIO_NET_F_CSUM: the device takes frames with a partial checksum (the driver may send NEEDS_CSUM).</summary>
    Csum = 1UL << 0,

    /// <summary>VIRTIO_NET_F_GUEST_CSUM: the driver takes frames with a partial checksum.</summary>
    GuestCsum = 1UL << 1,

    /// <summary>VIRTIO_NET_F_MTU: config space holds the MTU.</summary>
    Mtu = 1UL << 3,

    /// <summary>VIRTIO_NET_F_MAC: config space holds a MAC address.</summary>
    Mac = 1UL << 5,

    /// <summary>VIRTIO_NET_F_GUEST_TSO4: the driver takes TCPv4 GSO frames.</summary>
    GuestTso4 = 1UL << 7,

    /// <summary>VIRTIO_NET_F_GUEST_TSO6: the driver takes TCPv6 GSO frames.</summary>
    GuestTso6 = 1UL << 8,

    /// <summary>VIRTIO_NET_F_GUEST_ECN: the driver takes GSO frames with ECN.</summary>
    GuestEcn = 1UL << 9,

    /// <summary>VIRTIO_NET_F_GUEST_UFO: the driver takes UFO frames.</summary>
    GuestUfo = 1UL << 10,

    /// <summary>VIRTIO_NET_F_HOST_TSO4: the device takes TCPv4 GSO frames.</summary>
    HostTso4 = 1UL << 11,

    /// <summary>VIRTIO_NET_F_HOST_TSO6: the device takes TCPv6 GSO frames.</summary>
    HostTso6 = 1UL << 12,

    /// <summary>VIRTIO_NET_F_HOST_ECN: the device takes GSO frames with ECN.</summary>
    HostEcn = 1UL << 13,

    /// <summary>VIRTIO_NET_F_HOST_UFO: the device takes UFO frames.</summary>
    HostUfo = 1UL << 14,

    /// <summary>VIRTIO_NET_F_MRG_RXBUF: a received frame may span several RX buffers (num_buffers).</summary>
    MergeableRxBuffers = 1UL << 15,

    /// <summary>VIRTIO_NET_F_STATUS: config space holds the link status.</summary>
    Status = 1UL << 16,

    /// <summary>VIRTIO_NET_F_CTRL_VQ: a control virtqueue exists (the front-end emulates it; see docs/qemu-net.md).</summary>
    ControlVirtqueue = 1UL << 17,

    /// <summary>VIRTIO_NET_F_MQ: several RX/TX queue pairs.</summary>
    MultiQueue = 1UL << 22,

    /// <summary>VIRTIO_RING_F_INDIRECT_DESC.</summary>
    RingIndirectDescriptors = 1UL << 28,

    /// <summary>VIRTIO_RING_F_EVENT_IDX.</summary>
    RingEventIndex = 1UL << 29,

    /// <summary>VIRTIO_F_VERSION_1.</summary>
    Version1 = 1UL << 32,
}
