namespace VhostUserBackend.Devices.Net;

/// <summary>
/// The virtio-net device feature bits (VIRTIO 1.3 §5.1.3). The ring and transport bits every
/// device shares are <see cref="Vhost.Virtio.VirtioFeatures"/>; a device offers both, as one <c>ulong</c>.
/// </summary>
[Flags]
public enum VirtioNetFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>Bit 0 <c>VIRTIO_NET_F_CSUM</c>: the device takes frames with a partial checksum (the driver may send <see cref="VirtioNetHeaderFlags.NeedsCsum"/>).</summary>
    Csum = 1UL << 0,

    /// <summary>Bit 1 <c>VIRTIO_NET_F_GUEST_CSUM</c>: the driver takes frames with a partial checksum.</summary>
    GuestCsum = 1UL << 1,

    /// <summary>Bit 2 <c>VIRTIO_NET_F_CTRL_GUEST_OFFLOADS</c>: the control queue reconfigures the guest offloads.</summary>
    ControlGuestOffloads = 1UL << 2,

    /// <summary>Bit 3 <c>VIRTIO_NET_F_MTU</c>: <see cref="VirtioNetConfig.Mtu"/> is valid.</summary>
    Mtu = 1UL << 3,

    /// <summary>Bit 5 <c>VIRTIO_NET_F_MAC</c>: <see cref="VirtioNetConfig.Mac"/> is valid.</summary>
    Mac = 1UL << 5,

    /// <summary>Bit 7 <c>VIRTIO_NET_F_GUEST_TSO4</c>: the driver takes TCPv4 GSO frames.</summary>
    GuestTso4 = 1UL << 7,

    /// <summary>Bit 8 <c>VIRTIO_NET_F_GUEST_TSO6</c>: the driver takes TCPv6 GSO frames.</summary>
    GuestTso6 = 1UL << 8,

    /// <summary>Bit 9 <c>VIRTIO_NET_F_GUEST_ECN</c>: the driver takes GSO frames with ECN.</summary>
    GuestEcn = 1UL << 9,

    /// <summary>Bit 10 <c>VIRTIO_NET_F_GUEST_UFO</c>: the driver takes UFO frames.</summary>
    GuestUfo = 1UL << 10,

    /// <summary>Bit 11 <c>VIRTIO_NET_F_HOST_TSO4</c>: the device takes TCPv4 GSO frames.</summary>
    HostTso4 = 1UL << 11,

    /// <summary>Bit 12 <c>VIRTIO_NET_F_HOST_TSO6</c>: the device takes TCPv6 GSO frames.</summary>
    HostTso6 = 1UL << 12,

    /// <summary>Bit 13 <c>VIRTIO_NET_F_HOST_ECN</c>: the device takes GSO frames with ECN.</summary>
    HostEcn = 1UL << 13,

    /// <summary>Bit 14 <c>VIRTIO_NET_F_HOST_UFO</c>: the device takes UFO frames.</summary>
    HostUfo = 1UL << 14,

    /// <summary>Bit 15 <c>VIRTIO_NET_F_MRG_RXBUF</c>: a received frame may span several RX buffers (<see cref="VirtioNetHeader.NumBuffers"/>).</summary>
    MergeableRxBuffers = 1UL << 15,

    /// <summary>Bit 16 <c>VIRTIO_NET_F_STATUS</c>: <see cref="VirtioNetConfig.Status"/> is valid.</summary>
    Status = 1UL << 16,

    /// <summary>Bit 17 <c>VIRTIO_NET_F_CTRL_VQ</c>: a control virtqueue exists.</summary>
    ControlVirtqueue = 1UL << 17,

    /// <summary>Bit 18 <c>VIRTIO_NET_F_CTRL_RX</c>: the control queue sets RX modes (promiscuous, all-multicast).</summary>
    ControlRx = 1UL << 18,

    /// <summary>Bit 19 <c>VIRTIO_NET_F_CTRL_VLAN</c>: the control queue filters VLANs.</summary>
    ControlVlan = 1UL << 19,

    /// <summary>Bit 20 <c>VIRTIO_NET_F_CTRL_RX_EXTRA</c>: the control queue sets the extra RX modes.</summary>
    ControlRxExtra = 1UL << 20,

    /// <summary>Bit 21 <c>VIRTIO_NET_F_GUEST_ANNOUNCE</c>: the driver sends gratuitous packets when asked.</summary>
    GuestAnnounce = 1UL << 21,

    /// <summary>Bit 22 <c>VIRTIO_NET_F_MQ</c>: several RX/TX queue pairs (<see cref="VirtioNetConfig.MaxVirtqueuePairs"/>).</summary>
    MultiQueue = 1UL << 22,

    /// <summary>Bit 23 <c>VIRTIO_NET_F_CTRL_MAC_ADDR</c>: the control queue sets the MAC address.</summary>
    ControlMacAddress = 1UL << 23,

    /// <summary>Bit 50 <c>VIRTIO_NET_F_DEVICE_STATS</c>: the control queue reads device statistics.</summary>
    DeviceStats = 1UL << 50,

    /// <summary>Bit 52 <c>VIRTIO_NET_F_VQ_NOTF_COAL</c>: per-queue notification coalescing.</summary>
    VirtqueueNotificationCoalescing = 1UL << 52,

    /// <summary>Bit 53 <c>VIRTIO_NET_F_NOTF_COAL</c>: notification coalescing.</summary>
    NotificationCoalescing = 1UL << 53,

    /// <summary>Bit 54 <c>VIRTIO_NET_F_GUEST_USO4</c>: the driver takes UDPv4 segmentation offload frames.</summary>
    GuestUso4 = 1UL << 54,

    /// <summary>Bit 55 <c>VIRTIO_NET_F_GUEST_USO6</c>: the driver takes UDPv6 segmentation offload frames.</summary>
    GuestUso6 = 1UL << 55,

    /// <summary>Bit 56 <c>VIRTIO_NET_F_HOST_USO</c>: the device takes UDP segmentation offload frames.</summary>
    HostUso = 1UL << 56,

    /// <summary>Bit 57 <c>VIRTIO_NET_F_HASH_REPORT</c>: the device reports hashes (a longer header).</summary>
    HashReport = 1UL << 57,

    /// <summary>Bit 59 <c>VIRTIO_NET_F_GUEST_HDRLEN</c>: the driver sets <see cref="VirtioNetHeader.HeaderLength"/> exactly.</summary>
    GuestHeaderLength = 1UL << 59,

    /// <summary>Bit 60 <c>VIRTIO_NET_F_RSS</c>: receive-side scaling.</summary>
    Rss = 1UL << 60,

    /// <summary>Bit 61 <c>VIRTIO_NET_F_RSC_EXT</c>: the device coalesces received segments and reports it.</summary>
    RscExtension = 1UL << 61,

    /// <summary>Bit 62 <c>VIRTIO_NET_F_STANDBY</c>: the device is a standby for a primary device with the same MAC.</summary>
    Standby = 1UL << 62,

    /// <summary>Bit 63 <c>VIRTIO_NET_F_SPEED_DUPLEX</c>: <see cref="VirtioNetConfig.Speed"/> and <see cref="VirtioNetConfig.Duplex"/> are valid.</summary>
    SpeedDuplex = 1UL << 63,
}
