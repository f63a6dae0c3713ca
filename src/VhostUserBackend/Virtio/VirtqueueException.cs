using Vhost;

namespace VhostUserBackend.Virtio;

/// <summary>
/// A virtqueue error: almost always the guest driver put something invalid in the ring. The
/// error concerns one chain or one queue; the backend can go on serving the other queues.
/// No memory outside the mappings was touched.
/// </summary>
public sealed class VirtqueueException : VhostException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">What was wrong.</param>
    /// <param name="message">Details for the operator.</param>
    public VirtqueueException(VirtqueueError reason, string message)
        : base($"virtqueue error {reason}: {message}")
    {
        Reason = reason;
    }

    /// <summary>What was wrong.</summary>
    public VirtqueueError Reason { get; }
}
