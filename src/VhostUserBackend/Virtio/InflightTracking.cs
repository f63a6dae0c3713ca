namespace VhostUserBackend.Virtio;

/// <summary>
/// The inflight bookkeeping of one ring in an <see cref="InflightRegion"/>, whatever its layout
/// (<see cref="InflightTracker"/> for split rings, <see cref="PackedInflightTracker"/> for packed
/// ones): what the ring does at pop, put-back and completion so that a back-end restarted after a
/// crash finds in the region every request it must resubmit, in fetch order, and none it completed.
/// </summary>
/// <remarks>Used by the worker serving the ring (the control thread while the worker is paused); allocation-free.</remarks>
internal abstract class InflightTracking
{
    /// <summary>Requests left in flight by a previous back-end that are still to be handed out again.</summary>
    public abstract int PendingResubmissions { get; }

    /// <summary>The next request to resubmit, in fetch order, as a chain of <paramref name="queue"/>.</summary>
    /// <returns>False when none is left.</returns>
    /// <exception cref="VirtqueueException">The request cannot be taken into the queue.</exception>
    public abstract bool TryTakeResubmission(Virtqueue queue, out DescriptorChain chain);

    /// <summary>A resubmitted chain goes back to the front of the list (<see cref="Vring.Unpop"/>); it keeps its mark.</summary>
    /// <returns>False when <paramref name="chain"/> is not the resubmission taken last.</returns>
    public abstract bool TryReturnResubmission(Virtqueue queue, in DescriptorChain chain);

    /// <summary>Records a chain freshly popped from the ring as in flight.</summary>
    public abstract void MarkInflight(Virtqueue queue, in DescriptorChain chain);

    /// <summary>A freshly popped chain was put back (<see cref="Vring.Unpop"/>, after the queue rewound): it is not in flight any more.</summary>
    public abstract void UnmarkInflight(Virtqueue queue, in DescriptorChain chain);

    /// <summary>Publishes the used element of <paramref name="head"/> through <paramref name="queue"/> with the region's update sequence around it.</summary>
    public abstract void AddUsed(Virtqueue queue, ushort head, uint length);
}
