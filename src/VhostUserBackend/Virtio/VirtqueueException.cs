using Vhost;

namespace VhostUserBackend.Virtio;

/// <summary>
/// A virtqueue error: almost always the guest driver put something invalid in the ring. The
/// error concerns one chain or one queue; the backend can go on serving the other queues.
/// No memory outside the mappings was touched. The message names what was wrong (an internal
/// reason code such as <c>DescriptorLoop</c> or <c>ChainTooShort</c>) and where.
/// </summary>
public sealed class VirtqueueException : VhostException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">What was wrong.</param>
    /// <param name="message">Details for the operator.</param>
    internal VirtqueueException(VirtqueueError reason, string message)
        : base($"virtqueue error {reason}: {message}")
    {
        Reason = reason;
    }

    /// <summary>What was wrong (named in the message).</summary>
    internal VirtqueueError Reason { get; }
}
