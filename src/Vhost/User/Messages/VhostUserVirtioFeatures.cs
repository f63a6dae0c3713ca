namespace Vhost.User.Messages;

/// <summary>The virtio/vhost feature bits (GET/SET_FEATURES) the vhost-user protocol itself interprets.</summary>
[Flags]
public enum VhostUserVirtioFeatures : ulong
{
    /// <summary>No bit.</summary>
    None = 0,
    /// <summary>Bit 26 <c>VHOST_F_LOG_ALL</c>: log every write to guest memory (migration).</summary>
    LogAll = 1UL << 26,
    /// <summary>Bit 29 <c>VIRTIO_RING_F_EVENT_IDX</c>: used/avail event index notification suppression.</summary>
    RingEventIndex = 1UL << 29,
    /// <summary>Bit 30 <c>VHOST_USER_F_PROTOCOL_FEATURES</c>: protocol-feature negotiation and ring enable/disable.</summary>
    ProtocolFeatures = 1UL << 30,
    /// <summary>Bit 32 <c>VIRTIO_F_VERSION_1</c>.</summary>
    Version1 = 1UL << 32,
    /// <summary>Bit 33 <c>VIRTIO_F_ACCESS_PLATFORM</c> (ex <c>IOMMU_PLATFORM</c>): device IOTLB, gates IOTLB_MSG.</summary>
    AccessPlatform = 1UL << 33,
    /// <summary>Bit 34 <c>VIRTIO_F_RING_PACKED</c>: packed virtqueues.</summary>
    RingPacked = 1UL << 34,
}
