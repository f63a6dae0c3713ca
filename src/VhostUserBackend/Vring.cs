using System.Runtime.CompilerServices;
using Vhost;
using Vhost.User;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// One virtqueue as the daemon serves it (the rust-vmm <c>VringState</c> behind a <c>VringRwLock</c>):
/// the <see cref="Virtqueue"/>, the kick, call and error eventfds, and whether the ring is
/// started (it has a kick fd and was not stopped by GET_VRING_BASE) and enabled
/// (SET_VRING_ENABLE, or implicitly when protocol features were not negotiated).
/// </summary>
/// <remarks>
/// <para>Thread-safety: <see cref="IsStarted"/>, <see cref="IsEnabled"/>, <see cref="Index"/>,
/// <see cref="SignalUsedQueue"/> and <see cref="SignalError"/> may be used from any thread. The
/// data-path members (<see cref="TryPopDescriptorChain"/>, <see cref="AddUsed"/>,
/// <see cref="EnableNotification"/>, <see cref="DisableNotification"/>, <see cref="Queue"/>) belong
/// to the worker thread that serves the ring, inside <see cref="IVhostUserBackend.HandleEvent"/>:
/// they take no lock. The control thread changes a ring only while that worker is paused between
/// events, which is what makes the lock-free path safe.</para>
/// <para>The data path allocates nothing: inflight marks, dirty-page logging and the counters are
/// plain stores into preallocated or mapped memory.</para>
/// </remarks>
public sealed class Vring
{
    private readonly VhostUserBackendMetrics _metrics;
    private readonly KeyValuePair<string, object?> _tag;
    private volatile bool _started;
    private volatile bool _enabled;
    private long _popped;

    internal Vring(int index, ushort maxQueueSize, VhostUserBackendMetrics metrics)
    {
        Index = index;
        MaxQueueSize = maxQueueSize;
        Queue = new SplitQueue(maxQueueSize);
        _metrics = metrics;
        _tag = new KeyValuePair<string, object?>("queue", index);
    }

    /// <summary>The queue index.</summary>
    public int Index { get; }

    /// <summary>The largest size the device accepts.</summary>
    public ushort MaxQueueSize { get; }

    /// <summary>
    /// The virtqueue (a <see cref="SplitQueue"/>, or a <see cref="PackedQueue"/> when VIRTIO_F_RING_PACKED
    /// was acked). Use it directly only from the serving worker; prefer the members of this class,
    /// which also keep inflight tracking, dirty logging and metrics.
    /// </summary>
    public Virtqueue Queue { get; internal set; }

    /// <summary>Whether the ring is started: a kick fd arrived and GET_VRING_BASE has not stopped it since.</summary>
    public bool IsStarted
    {
        get => _started;
        internal set => _started = value;
    }

    /// <summary>Whether the ring is enabled (the front-end wants it processed).</summary>
    public bool IsEnabled
    {
        get => _enabled;
        internal set => _enabled = value;
    }

    /// <summary>Whether the ring is started, enabled and mapped: <see cref="TryPopDescriptorChain"/> may be used.</summary>
    public bool IsReady => _started && _enabled && Queue.IsReady;

    /// <summary>The guest memory snapshot the queue uses (null while it is not ready).</summary>
    public GuestMemory? Memory => Queue.Memory;

    /// <summary>Whether the serving worker is in its polling window (notifications stay disabled).</summary>
    public bool IsPolling { get; internal set; }

    /// <summary>The number of chains popped since the daemon started (for polling and tests).</summary>
    public long PoppedCount => Volatile.Read(ref _popped);

    internal EventFd? Kick { get; set; }

    internal EventFd? Call { get; set; }

    internal EventFd? Error { get; set; }

    internal InflightTracker? Inflight { get; set; }

    /// <summary>The front-end's SET_LOG_FD eventfd, signalled after completions while dirty logging is on (owned by the connection's handler).</summary>
    internal EventFd? LogEvent { get; set; }

    /// <summary>The back-end channel when INBAND_NOTIFICATIONS is negotiated (used when the front-end gave no call or error fd).</summary>
    internal VhostUserBackendChannel? InbandChannel { get; set; }

    internal ulong DescriptorUserAddress { get; set; }

    internal ulong AvailUserAddress { get; set; }

    internal ulong UsedUserAddress { get; set; }

    internal bool HasAddresses { get; set; }

    /// <summary>Where the ring's own writes are logged (<c>VHOST_VRING_F_LOG</c>'s <c>log_guest_addr</c>), or null when they are not (control thread).</summary>
    internal ulong? RingLogAddress { get; set; }

    /// <summary>
    /// Takes the next chain: first any chain left inflight by a previous back-end (in the order it
    /// was fetched), then the next available one. Marks it inflight when the front-end gave an
    /// inflight region.
    /// </summary>
    /// <param name="chain">The chain; return it with <see cref="AddUsed"/>.</param>
    /// <returns>False when nothing is available.</returns>
    /// <exception cref="VirtqueueException">The ring holds an invalid entry.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public bool TryPopDescriptorChain(out DescriptorChain chain)
    {
        Virtqueue queue = Queue;
        InflightTracker? inflight = Inflight;
        if (inflight is not null && inflight.TryTakeResubmission(out ushort resubmit))
        {
            chain = queue.ResubmittedChain(resubmit);
        }
        else
        {
            if (!queue.TryPopDescriptorChain(out chain))
            {
                return false;
            }

            inflight?.MarkInflight(chain.Head);
        }

        _popped++;

        // Enabled first: with no listener the per-chain cost is one field read, not a call into
        // the metrics pipeline (measured at 6 % of the NativeAOT RX path).
        if (_metrics.Descriptors.Enabled)
        {
            _metrics.Descriptors.Add(1, _tag);
        }
        return true;
    }

    /// <summary>Returns a chain as used: publishes the used element (logged in the dirty log while migrating) and clears its inflight mark.</summary>
    /// <param name="head">The chain's <see cref="DescriptorChain.Head"/>.</param>
    /// <param name="length">Bytes written into the chain's writable buffers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The head is out of range.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public void AddUsed(ushort head, uint length)
    {
        Virtqueue queue = Queue;
        InflightTracker? inflight = Inflight;
        if (inflight is not null && queue is SplitQueue split)
        {
            inflight.BeginUsed(head);
            split.AddUsed(head, length);
            inflight.EndUsed(head, split.NextUsed);
        }
        else
        {
            queue.AddUsed(head, length);
        }

        if (length != 0 && _metrics.Bytes.Enabled)
        {
            _metrics.Bytes.Add(length, _tag);
        }
    }

    /// <summary>
    /// Writes a used element without publishing <c>used.idx</c> yet (split rings): call
    /// <see cref="PublishUsed"/> (or <see cref="SignalUsedQueue"/>, which publishes first) after the
    /// batch, so the driver sees one index store per batch. With an inflight region this is
    /// <see cref="AddUsed"/>.
    /// </summary>
    /// <param name="head">The chain's <see cref="DescriptorChain.Head"/>.</param>
    /// <param name="length">Bytes written into the chain's writable buffers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The head is out of range.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public void AddUsedDeferred(ushort head, uint length)
    {
        if (Inflight is not null)
        {
            AddUsed(head, length);
            return;
        }

        Queue.AddUsedDeferred(head, length);
        if (length != 0 && _metrics.Bytes.Enabled)
        {
            _metrics.Bytes.Add(length, _tag);
        }
    }

    /// <summary>Publishes the elements added with <see cref="AddUsedDeferred"/> (one release store of <c>used.idx</c>).</summary>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public void PublishUsed() => Queue.PublishUsed();

    /// <summary>
    /// Signals the call eventfd when the driver wants a notification (honouring EVENT_IDX and the
    /// no-interrupt flag). When the front-end gave no call fd and negotiated INBAND_NOTIFICATIONS
    /// and BACKEND_REQ, sends VRING_CALL on the back-end channel instead.
    /// </summary>
    /// <returns>True when the driver was notified.</returns>
    public bool SignalUsedQueue()
    {
        Virtqueue queue = Queue;
        if (!queue.IsReady)
        {
            return false;
        }

        bool notify = queue.NeedsNotification();

        // SET_LOG_FD: while dirty logging is on, tell the front-end the log changed.
        if (LogEvent is { } logEvent && queue.Memory.DirtyLog is not null)
        {
            logEvent.TrySignal();
        }

        if (!notify)
        {
            return false;
        }

        EventFd? call = Call;
        if (call is null)
        {
            if (InbandChannel is not { } channel || !TrySend(channel, error: false))
            {
                return false;
            }
        }
        else if (call.IsClosed || !call.TrySignal())
        {
            return false;
        }

        _metrics.Calls.Add(1, _tag);
        return true;
    }

    /// <summary>Signals the error eventfd (SET_VRING_ERR), when the front-end gave one; without one, sends VRING_ERR in-band when negotiated (see <see cref="SignalUsedQueue"/>).</summary>
    /// <returns>True when it was signalled.</returns>
    public bool SignalError()
    {
        EventFd? error = Error;
        if (error is null)
        {
            return InbandChannel is { } channel && TrySend(channel, error: true);
        }

        if (error.IsClosed)
        {
            return false;
        }

        try
        {
            return error.TrySignal();
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Asks the driver for kicks again; in the polling window it does nothing and returns false.</summary>
    /// <returns>True when buffers arrived meanwhile (process them before sleeping).</returns>
    public bool EnableNotification() => !IsPolling && Queue.EnableNotification();

    /// <summary>Tells the driver that kicks are not needed (while processing).</summary>
    public void DisableNotification() => Queue.DisableNotification();

    /// <summary>VRING_CALL / VRING_ERR on the back-end channel; false when the channel is closed or broken (the front-end went away).</summary>
    private bool TrySend(VhostUserBackendChannel channel, bool error)
    {
        try
        {
            if (error)
            {
                channel.SendVringError(Index);
            }
            else
            {
                channel.SendVringCall(Index);
            }

            return true;
        }
        catch (Exception e) when (e is VhostException or ObjectDisposedException)
        {
            return false;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CountKick() => _metrics.Kicks.Add(1, _tag);
}
