using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>Putting a popped chain back (QEMU's <c>virtqueue_unpop</c>).</summary>
public sealed partial class Vring
{
    private volatile bool _stopping;

    /// <summary>
    /// The control thread is about to stop the ring (GET_VRING_BASE, a new kick fd, a reset; the
    /// worker paused): from now until <see cref="Stop"/> the ring hands out no chain
    /// (<see cref="TryPopDescriptorChain"/> returns false, <see cref="IsReady"/> and
    /// <see cref="EnableNotification"/> are false). So the chains the device puts back
    /// (<see cref="IVhostUserBackend.UnpopHeldChains"/>) stay back while the daemon waits for the
    /// ones in flight, even when it delivers the device's listener events meanwhile.
    /// </summary>
    internal void BeginStop() => _stopping = true;

    /// <summary>
    /// Puts back <paramref name="chain"/>, the most recently popped chain that was neither completed
    /// nor put back (QEMU's <c>virtqueue_unpop</c>, libvhost-user's <c>vu_queue_unpop</c>, rust-vmm's
    /// <c>go_to_previous_position</c>): the ring returns to where that pop found it, so the next
    /// <see cref="TryPopDescriptorChain"/> takes the same chain again, and the base GET_VRING_BASE
    /// reports does not count it. Put several chains back newest first (the reverse of the pop order).
    /// </summary>
    /// <remarks>
    /// <para>Everything the pop did is undone: the ring position (split: the next avail index goes back
    /// by one; packed: by the chain's <see cref="DescriptorChain.RingCount"/> descriptors, the avail
    /// wrap counter flipping when that crosses slot 0, and the queue's copy of the descriptors is
    /// freed), <see cref="InFlight"/>, <see cref="PoppedCount"/>, and the chain's mark in the inflight
    /// region (INFLIGHT_SHMFD), so a back-end restarted after a crash does not resubmit it. A chain
    /// that was itself an inflight resubmission goes back to the front of the resubmission list and
    /// keeps its mark. The <c>vhost_user.queue.descriptors</c> counter, a monotonic metric, keeps
    /// the pop: a chain popped again counts again.</para>
    /// <para>The chain must not be used afterwards: nothing written into its buffers reaches the
    /// driver or the dirty log. A completion other threads queued for it is applied first, so putting
    /// back a chain that was completed is refused; a chain is finished once, either way.</para>
    /// <para>Afterwards the chain is available again: <see cref="EnableNotification"/> reports it
    /// (returns true) and, with EVENT_IDX, publishes the rewound position as the avail event, exactly
    /// as if the chain had never been popped. So pop it again before waiting for a kick; a device
    /// that waits for more buffers than the driver has posted keeps the chains it has instead.</para>
    /// <para>Threads: the worker serving the ring (inside <see cref="IVhostUserBackend.HandleEvent"/>),
    /// or the control thread inside <see cref="IVhostUserBackend.UnpopHeldChains"/>, where the worker
    /// is paused. Allocates nothing.</para>
    /// </remarks>
    /// <param name="chain">The chain, as <see cref="TryPopDescriptorChain"/> returned it.</param>
    /// <exception cref="InvalidOperationException">The chain is not in flight on this ring (completed
    /// or put back already, popped from another ring or before the ring stopped), it is not the most
    /// recently popped chain still out (chains go back newest first, and never past one popped later
    /// and completed), or the ring is broken (<see cref="IsBroken"/>: its position is not trusted).
    /// The ring's position is unchanged.</exception>
    public void Unpop(in DescriptorChain chain)
    {
        ushort head = chain.Head;
        if (_broken)
        {
            throw new InvalidOperationException($"ring {Index} is broken: chain {head} cannot be put back (the front-end restarts the ring)");
        }

        ApplyQueuedCompletions();
        if (chain.Queue is null || chain.Queue != Queue || chain.Epoch != _epoch || head >= _inFlight.Length || _inFlight[head] == 0)
        {
            throw new InvalidOperationException($"ring {Index}: chain {head} is not in flight (completed or put back already, from another ring, or popped before the ring stopped)");
        }

        if (!_popOrder.IsLatest(head, out bool resubmitted))
        {
            throw new InvalidOperationException($"ring {Index}: chain {head} is not the most recently popped chain still out; put chains back newest first, and not past one popped later and completed");
        }

        if (resubmitted)
        {
            if (Inflight is not { } tracker || !tracker.TryReturnResubmission(Queue, chain))
            {
                throw new InvalidOperationException($"ring {Index}: chain {head} was resubmitted from an inflight region that was replaced since; it cannot be put back");
            }
        }
        else
        {
            Queue.Rewind(chain);
            Inflight?.UnmarkInflight(Queue, chain);
        }

        _popOrder.StepBack();
        Retire(head);
        _popped--;
    }

    /// <summary>
    /// Applies the completions other threads queued (the used elements are published and the driver
    /// notified when the worker's event, or the control thread's drain, ends).
    /// </summary>
    private void ApplyQueuedCompletions()
    {
        while (Queue.IsReady && _completions.TryDequeue(out ulong entry))
        {
            Apply(entry);
            _completedOnWorker = true;
        }
    }
}
