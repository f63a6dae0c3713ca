using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>What a request gets back from the side that serves it.</summary>
internal enum VhostUserReplyKind
{
    /// <summary>A u64 acknowledgement (0 ok, non-zero failure) when the request carries NEED_REPLY (REPLY_ACK), nothing otherwise.</summary>
    AckWhenAsked,

    /// <summary>A reply of its own, always (GET_FEATURES, GET_CONFIG, SHARED_OBJECT_LOOKUP, ...).</summary>
    Own,
}

/// <summary>How a request that failed is reported to the peer.</summary>
internal enum VhostUserFailureForm
{
    /// <summary>A failed acknowledgement when NEED_REPLY was set; otherwise the failure is only logged and serving goes on.</summary>
    Acknowledgement,

    /// <summary>The peer waits for a reply this request has no failure form of: the connection ends.</summary>
    None,

    /// <summary>A reply without payload (GET_CONFIG's size-0 error; POSTCOPY_ADVISE without the userfaultfd).</summary>
    EmptyReply,

    /// <summary>An inflight description with mmap_size 0 and no fd (GET_INFLIGHT_FD).</summary>
    NoInflightRegion,

    /// <summary>A u64 with the no-fd flag and error bit (SET_DEVICE_STATE_FD).</summary>
    DeviceStateError,

    /// <summary>A u64 1 (CHECK_DEVICE_STATE, POSTCOPY_END, IOTLB_MSG, GET_SHARED_OBJECT).</summary>
    U64Failure,

    /// <summary>A u64 negative errno when NEED_REPLY was set, or always for a request with a reply of its own (the back-end channel).</summary>
    NegativeErrno,
}

/// <summary>A condition on the virtio features (SET_FEATURES) that gates a request, beside its protocol-feature gate.</summary>
internal enum VhostUserVirtioGate
{
    /// <summary>No virtio condition.</summary>
    None,

    /// <summary>The back-end offers VHOST_USER_F_PROTOCOL_FEATURES (GET/SET_PROTOCOL_FEATURES).</summary>
    ProtocolFeaturesOffered,

    /// <summary>VHOST_USER_F_PROTOCOL_FEATURES was acked, or at least protocol features were set (SET_VRING_ENABLE; QEMU up to 7.2 never acks the bit for net).</summary>
    ProtocolFeaturesAcked,

    /// <summary>VIRTIO_F_ACCESS_PLATFORM was acked (IOTLB messages).</summary>
    AccessPlatform,
}

/// <summary>
/// One row of a request table: everything the dispatch path needs to know about one request
/// before and after its handler method runs.
/// </summary>
/// <typeparam name="THandler">The handler-method delegate of the table's dispatcher.</typeparam>
/// <param name="Size">The payload size in bytes; -1 when it varies and the handler method checks it.</param>
/// <param name="MinFds">The fewest fds the request carries.</param>
/// <param name="MaxFds">The most fds the request carries.</param>
/// <param name="Gate">The protocol features that must have been negotiated.</param>
/// <param name="VirtioGate">A virtio-feature condition, if any.</param>
/// <param name="Reply">The reply kind.</param>
/// <param name="Failure">How a failure is reported.</param>
/// <param name="Handle">The handler method.</param>
internal readonly record struct VhostUserRequestRow<THandler>(
    int Size,
    int MinFds,
    int MaxFds,
    VhostUserProtocolFeatures Gate,
    VhostUserVirtioGate VirtioGate,
    VhostUserReplyKind Reply,
    VhostUserFailureForm Failure,
    THandler Handle)
    where THandler : Delegate
{
    /// <summary>Whether a row is present (a code the table knows).</summary>
    public bool IsKnown => Handle is not null;
}
