namespace VhostUserBackend.Virtio;

/// <summary>Why a virtqueue operation failed (<see cref="VirtqueueException.Reason"/>); most are a guest (driver) error.</summary>
internal enum VirtqueueError
{
    /// <summary>The queue size is zero, larger than the maximum, or (split ring) not a power of two.</summary>
    InvalidQueueSize = 1,

    /// <summary>The queue is not ready (not activated, or reset).</summary>
    QueueNotReady,

    /// <summary>A ring area (descriptor table, driver or device area) is misaligned, not mapped, or not contiguous.</summary>
    InvalidRingAddress,

    /// <summary>Split ring: <c>avail.idx</c> moved more than the queue size past the device's next index.</summary>
    AvailIndexOutOfRange,

    /// <summary>Split ring: an available ring entry names a head descriptor index ≥ the queue size.</summary>
    HeadIndexOutOfRange,

    /// <summary>A descriptor's <c>next</c> points outside its table.</summary>
    NextIndexOutOfRange,

    /// <summary>The chain revisits a descriptor: a loop.</summary>
    DescriptorLoop,

    /// <summary>The chain has more descriptors than the queue size.</summary>
    ChainTooLong,

    /// <summary>An indirect descriptor although VIRTIO_RING_F_INDIRECT_DESC was not negotiated.</summary>
    IndirectNotNegotiated,

    /// <summary>An indirect table whose length is zero, not a multiple of 16, or over 2^16 entries.</summary>
    InvalidIndirectTableLength,

    /// <summary>An indirect descriptor inside an indirect table.</summary>
    NestedIndirect,

    /// <summary>An indirect descriptor with the WRITE flag. No longer reported: the spec has the device ignore that flag (kept for compatibility).</summary>
    IndirectWithWriteFlag,

    /// <summary>An indirect descriptor with the NEXT flag.</summary>
    IndirectWithNextFlag,

    /// <summary>An indirect table that is not mapped in one contiguous region.</summary>
    IndirectTableNotMapped,

    /// <summary>A buffer whose address plus length wraps past 2^64.</summary>
    BufferAddressOverflow,

    /// <summary>A buffer not entirely inside guest memory (outside every region, or straddling a region edge into a hole).</summary>
    BufferNotMapped,

    /// <summary>A device-readable descriptor after a device-writable one.</summary>
    ReadableAfterWritable,

    /// <summary>Packed ring: a buffer id ≥ the queue size, or one already in flight.</summary>
    InvalidBufferId,

    /// <summary>Packed ring: a chain continues into a descriptor the driver has not made available.</summary>
    ChainNotAvailable,

    /// <summary>The chain was popped under a guest memory snapshot that has since been replaced.</summary>
    StaleChain,

    /// <summary>Packed ring: the driver made more descriptors available than the queue size while earlier ones are still in flight.</summary>
    TooManyInFlight,

    /// <summary>
    /// A chain's buffers add up to more than a <see cref="DescriptorChainWriter"/> can report: the
    /// writable ones past 2^32 - 1 bytes (the used element's 32-bit length), or either side past 2^64.
    /// </summary>
    ChainLengthOverflow,

    /// <summary>
    /// A <see cref="DescriptorChainReader"/> or <see cref="DescriptorChainWriter"/> was asked for
    /// more bytes than the chain's readable (or writable) buffers hold: the driver's buffers are too
    /// small for the request.
    /// </summary>
    ChainTooShort,

    /// <summary>
    /// The driver rewrote a chain's descriptors while the chain was in flight: walking it again
    /// gave fewer buffers, or buffers of another direction, than when the reader or writer was created.
    /// </summary>
    ChainChanged,

    /// <summary>
    /// The front-end shrank a guest-RAM file under the daemon: an access faulted (SIGBUS) and the
    /// fault guard replaced the region with zeros, so nothing read from it can be trusted (see
    /// <see cref="Memory.GuestMemoryFaultGuard"/>). Not a guest error: the connection is dropped.
    /// </summary>
    GuestMemoryLost,

    /// <summary>
    /// VIRTIO_F_ACCESS_PLATFORM: an address the driver gave (a buffer, an indirect table, a ring
    /// area) has no IOTLB translation, and the front-end did not supply one within the miss
    /// timeout (or there is no back-end channel to ask it on).
    /// </summary>
    IotlbMiss,

    /// <summary>VIRTIO_F_ACCESS_PLATFORM: the IOTLB maps the address without the permission the access needs (a device-writable buffer in a read-only mapping, for example).</summary>
    IotlbAccessDenied,

    /// <summary>VIRTIO_F_ACCESS_PLATFORM: the IOTLB maps the address to a front-end address outside guest memory (or a ring area to scattered addresses).</summary>
    IotlbNotGuestMemory,
}
