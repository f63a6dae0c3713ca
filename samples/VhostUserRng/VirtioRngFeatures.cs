namespace VhostUserRng;

/// <summary>The feature bits this virtio-rng device offers (virtio-rng itself has none, virtio 1.2 §5.4.3).</summary>
[Flags]
public enum VirtioRngFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>VIRTIO_RING_F_INDIRECT_DESC.</summary>
    RingIndirectDescriptors = 1UL << 28,

    /// <summary>VIRTIO_RING_F_EVENT_IDX.</summary>
    RingEventIndex = 1UL << 29,

    /// <summary>VIRTIO_F_VERSION_1.</summary>
    Version1 = 1UL << 32,
}
