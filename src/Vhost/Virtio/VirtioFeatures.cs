namespace Vhost.Virtio;

/// <summary>
/// The device-independent virtio feature bits (VIRTIO 1.3 §6, "Reserved Feature Bits"): the
/// ring and transport features every device type shares. A device's own bits (0 to 23, and 50 to
/// 63 for some types) are in its device type's enum; combine the two as <c>ulong</c>.
/// </summary>
/// <remarks>
/// Bits 26 and 30 are not virtio bits but vhost ones (<c>VHOST_F_LOG_ALL</c>,
/// <c>VHOST_USER_F_PROTOCOL_FEATURES</c>): they are in <c>Vhost.User.Messages.VhostUserVirtioFeatures</c>.
/// </remarks>
[Flags]
public enum VirtioFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>Bit 24 <c>VIRTIO_F_NOTIFY_ON_EMPTY</c> (legacy): notify the driver when the available ring empties, even with notifications suppressed.</summary>
    NotifyOnEmpty = 1UL << 24,

    /// <summary>Bit 27 <c>VIRTIO_F_ANY_LAYOUT</c> (legacy): the device takes any framing of a request over descriptors (implied by <see cref="Version1"/>).</summary>
    AnyLayout = 1UL << 27,

    /// <summary>Bit 28 <c>VIRTIO_F_INDIRECT_DESC</c>: the driver may use indirect descriptor tables.</summary>
    RingIndirectDescriptors = 1UL << 28,

    /// <summary>Bit 29 <c>VIRTIO_F_EVENT_IDX</c>: the <c>used_event</c> and <c>avail_event</c> fields suppress notifications.</summary>
    RingEventIndex = 1UL << 29,

    /// <summary>Bit 32 <c>VIRTIO_F_VERSION_1</c>: the device complies with VIRTIO 1.0 or later (little-endian, modern layouts).</summary>
    Version1 = 1UL << 32,

    /// <summary>Bit 33 <c>VIRTIO_F_ACCESS_PLATFORM</c> (once <c>IOMMU_PLATFORM</c>): the device accesses memory through the platform's IOMMU or translation.</summary>
    AccessPlatform = 1UL << 33,

    /// <summary>Bit 34 <c>VIRTIO_F_RING_PACKED</c>: packed virtqueues.</summary>
    RingPacked = 1UL << 34,

    /// <summary>Bit 35 <c>VIRTIO_F_IN_ORDER</c>: the device uses buffers in the order the driver made them available.</summary>
    InOrder = 1UL << 35,

    /// <summary>Bit 36 <c>VIRTIO_F_ORDER_PLATFORM</c>: the driver must use the platform's memory ordering (the device is hardware, or behind one).</summary>
    OrderPlatform = 1UL << 36,

    /// <summary>Bit 37 <c>VIRTIO_F_SR_IOV</c>: the device supports single-root I/O virtualization.</summary>
    SrIov = 1UL << 37,

    /// <summary>Bit 38 <c>VIRTIO_F_NOTIFICATION_DATA</c>: the driver passes extra data (the ring position) in its notifications.</summary>
    NotificationData = 1UL << 38,

    /// <summary>Bit 39 <c>VIRTIO_F_NOTIF_CONFIG_DATA</c>: the driver notifies with a device-provided value instead of the queue index.</summary>
    NotificationConfigData = 1UL << 39,

    /// <summary>Bit 40 <c>VIRTIO_F_RING_RESET</c>: the driver may reset one queue at a time.</summary>
    RingReset = 1UL << 40,

    /// <summary>Bit 41 <c>VIRTIO_F_ADMIN_VQ</c>: the device has an administration virtqueue.</summary>
    AdminVirtqueue = 1UL << 41,
}
