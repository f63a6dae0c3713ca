using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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
/// <para>Threading contract. Any thread: <see cref="Complete"/> (finish a chain popped earlier,
/// possibly long after, in any order), <see cref="RequestProcessing"/> (have the worker call the
/// device for this ring soon), <see cref="SignalError"/>, and the read-only state
/// (<see cref="IsStarted"/>, <see cref="IsEnabled"/>, <see cref="Index"/>, <see cref="InFlight"/>).
/// The worker that serves the ring only, inside <see cref="IVhostUserBackend.HandleEvent"/>:
/// <see cref="TryPopDescriptorChain"/>, <see cref="Unpop"/>, <see cref="AddUsed"/>, <see cref="AddUsedDeferred"/>,
/// <see cref="PublishUsed"/>, <see cref="SignalUsedQueue"/>, <see cref="EnableNotification"/>,
/// <see cref="DisableNotification"/>; they take no lock. Completions from
/// other threads go through a lock-free queue the worker drains: it writes the used elements,
/// logs dirty pages, clears inflight marks and decides on the notification, one batch at a time.
/// The control thread changes a ring only while that worker is paused between events; before it
/// stops a ring or changes guest memory it asks the device to put back the chains it holds
/// (<see cref="IVhostUserBackend.UnpopHeldChains"/>, where <see cref="Unpop"/> is used on the control
/// thread) and waits (bounded) for the chains still in flight.</para>
/// <para>The data path allocates nothing: inflight marks, dirty-page logging and the counters are
/// plain stores into preallocated or mapped memory.</para>
/// </remarks>
public sealed partial class Vring
{
    private readonly VhostUserBackendMetrics _metrics;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly CompletionQueue _completions;
    private readonly PopOrder _popOrder;

    // In-flight chains (worker, or the control thread while the worker is paused): 1 + the index
    // of the retired memory snapshot it was taken under, 1 when under the current one, 0 when not
    // in flight.
    private readonly byte[] _inFlight;
    private readonly List<RetiredMemory> _retired = [];

    // Chains abandoned when the ring stopped with them still in the device (epoch << 16 | head),
    // with the memory snapshot each keeps mapped (null when none could be kept). Until the last
    // of them completes (late, dropped) the ring takes no new chain: the device's old I/O may
    // still land, and a chain resubmitted or reused meanwhile could be overwritten by it.
    // The fence lifts when the last of them completes, or at the latest at _fenceDeadline (a device
    // that lost a chain must not stop the ring for good): the timer then has the worker look again.
    // Chains abandoned on a ring the guest broke do not fence it: a driver that broke its ring
    // resets the device, and waiting would only delay the recovery; their memory is still kept.
    private Dictionary<uint, Abandoned>? _abandoned;
    private int _abandonedCount;
    private int _fencingCount;
    private volatile bool _fenced;
    private long _fenceDeadline;
    private Timer? _fenceTimer;
    private volatile bool _started;
    private volatile bool _enabled;
    private volatile bool _broken;
    private long _brokenKicks;
    private long _brokenLoggedAt;
    private int _inFlightCount;
    private ushort _epoch;
    private bool _completedOnWorker;
    private int _workRequested;
    private long _popped;
    private long _discarded;

    internal Vring(int index, ushort maxQueueSize, VhostUserBackendMetrics metrics)
    {
        Index = index;
        MaxQueueSize = maxQueueSize;
        Queue = new SplitQueue(maxQueueSize);
        _metrics = metrics;
        _tag = new KeyValuePair<string, object?>("queue", index);
        _completions = new CompletionQueue(maxQueueSize);
        _inFlight = new byte[maxQueueSize];
        _popOrder = new PopOrder(maxQueueSize);
    }

    /// <summary>The queue index.</summary>
    public int Index { get; }

    /// <summary>The largest size the device accepts.</summary>
    public ushort MaxQueueSize { get; }

    /// <summary>
    /// The virtqueue: a <see cref="SplitQueue"/>, or a <see cref="PackedQueue"/> when
    /// VIRTIO_F_RING_PACKED was acked (replaced by <see cref="ApplyFeatures"/>). Devices use the
    /// members of this class, which also keep inflight tracking, dirty logging and metrics.
    /// </summary>
    internal Virtqueue Queue { get; private set; }

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

    /// <summary>Whether the ring is started, enabled, mapped, not broken and not being stopped: <see cref="TryPopDescriptorChain"/> may be used.</summary>
    public bool IsReady => _started && _enabled && !_broken && !_stopping && Queue.IsReady;

    /// <summary>
    /// Whether the guest broke the ring (libvhost-user's <c>vu_panic</c>): its available side held
    /// an entry no device can process (an <c>avail.idx</c> more than the queue size ahead, a head
    /// out of range, a descriptor loop or a buffer outside guest memory that reached the worker as
    /// a <see cref="VirtqueueException"/>). The error was logged once and signalled once on the
    /// error eventfd (or in-band VRING_ERR); the ring is not processed and its kicks are ignored
    /// until the front-end stops and restarts it (GET_VRING_BASE, SET_VRING_KICK, RESET_DEVICE).
    /// Chains popped before stay completable. Any thread; a snapshot.
    /// </summary>
    public bool IsBroken => _broken;

    /// <summary>The guest memory snapshot the queue uses (null while it is not ready).</summary>
    public GuestMemory? Memory => Queue.Memory;

    /// <summary>Whether the serving worker is in its polling window (notifications stay disabled).</summary>
    public bool IsPolling { get; internal set; }

    /// <summary>
    /// Whether the calling thread serves this ring: inside <see cref="IVhostUserBackend.HandleEvent"/>
    /// of this device, or of another device whose worker shares the thread
    /// (<see cref="VhostUserDaemonOptions.WorkerGroup"/>). Then the worker-only members may be used,
    /// for example to forward a frame from one port's TX ring straight into this port's RX ring.
    /// </summary>
    public bool IsServedByCurrentThread => Worker is { } worker && worker.IsCurrentThread;

    /// <summary>The number of chains popped since the daemon started (for polling and tests).</summary>
    public long PoppedCount => Volatile.Read(ref _popped);

    /// <summary>Chains popped and not completed yet (any thread; a snapshot).</summary>
    public int InFlight => Volatile.Read(ref _inFlightCount);

    /// <summary>Completions that were dropped: for a chain of a ring stopped meanwhile, or a chain completed twice (a device bug).</summary>
    public long DiscardedCompletions => Volatile.Read(ref _discarded);

    /// <summary>The worker that serves this ring.</summary>
    internal VhostUserWorker? Worker { get; set; }

    /// <summary>Whether the ring waits in its thread's publish list (that thread only).</summary>
    internal bool PublishNoted { get; set; }

    internal EventFd? Kick { get; set; }

    internal EventFd? Call { get; set; }

    internal EventFd? Error { get; set; }

    internal InflightTracking? Inflight { get; set; }

    /// <summary>The front-end's SET_LOG_FD eventfd, signalled after completions while dirty logging is on (owned by the connection's handler).</summary>
    internal EventFd? LogEvent { get; set; }

    /// <summary>The back-end channel when INBAND_NOTIFICATIONS is negotiated (used when the front-end gave no call or error fd).</summary>
    internal VhostUserBackendChannel? InbandChannel { get; set; }

    /// <summary>
    /// Takes the next chain: first any chain left inflight by a previous back-end (in the order it
    /// was fetched), then the next available one. Marks it inflight when the front-end gave an
    /// inflight region.
    /// </summary>
    /// <param name="chain">The chain; return it with <see cref="AddUsed"/> or <see cref="Complete"/>, or put it back with <see cref="Unpop"/>.</param>
    /// <returns>False when nothing is available, the ring is being stopped, the device still has chains the ring abandoned when it last stopped (<see cref="VhostUserDaemonOptions.InFlightTimeout"/>; the worker calls the device for the ring once the last of them completed), or the ring is broken: an invalid entry in the ring marks it <see cref="IsBroken"/> (logged and signalled once) instead of throwing.</returns>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public bool TryPopDescriptorChain(out DescriptorChain chain)
    {
        if (_broken || _stopping || (_fenced && IsStillFenced()))
        {
            chain = default;
            return false;
        }

        Virtqueue queue = Queue;
        InflightTracking? inflight = Inflight;
        bool resubmitted = false;
        try
        {
            if (inflight is not null && inflight.TryTakeResubmission(queue, out chain))
            {
                resubmitted = true;
            }
            else
            {
                if (!queue.TryPopDescriptorChain(out chain) || IsGuestMemoryLost())
                {
                    chain = default;
                    return false;
                }

                inflight?.MarkInflight(queue, chain);
            }
        }
        catch (VirtqueueException e)
        {
            // A ring the guest broke stays broken: one error, not one per event (IsBroken).
            MarkBroken(e);
            chain = default;
            return false;
        }

        ushort head = chain.Head;
        if (head < _inFlight.Length)
        {
            _inFlight[head] = 1;
            _inFlightCount++;
            _popOrder.Record(head, resubmitted);
        }

        chain = chain.WithEpoch(_epoch);
        _popped++;

        // Enabled first: with no listener the per-chain cost is one field read, not a call into
        // the metrics pipeline (measured at 6 % of the NativeAOT RX path).
        if (_metrics.Descriptors.Enabled)
        {
            _metrics.Descriptors.Add(1, _tag);
        }
        return true;
    }

    /// <summary>
    /// Returns a chain as used and publishes it (worker only): the used element is written, the
    /// first <paramref name="length"/> bytes of its writable buffers and the ring are logged while
    /// the front-end logs dirty pages (a live migration), and its inflight mark is cleared.
    /// </summary>
    /// <param name="head">The chain's <see cref="DescriptorChain.Head"/>.</param>
    /// <param name="length">Bytes written into the chain's writable buffers (the dirty log covers exactly these).</param>
    /// <exception cref="ArgumentOutOfRangeException">The head is out of range.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready, or the chain is not in flight (completed twice).</exception>
    public void AddUsed(ushort head, uint length)
    {
        AddUsedDeferred(head, length);
        Queue.PublishUsed();
    }

    /// <summary>
    /// Writes a used element without publishing <c>used.idx</c> yet (split rings; worker only):
    /// call <see cref="PublishUsed"/> (or <see cref="SignalUsedQueue"/>, which publishes first) after
    /// the batch, so the driver sees one index store per batch. Logs and clears marks as
    /// <see cref="AddUsed"/> does.
    /// </summary>
    /// <param name="head">The chain's <see cref="DescriptorChain.Head"/>.</param>
    /// <param name="length">Bytes written into the chain's writable buffers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The head is out of range.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready, or the chain is not in flight (completed twice).</exception>
    public void AddUsedDeferred(ushort head, uint length)
    {
        if (head < _inFlight.Length && _inFlight[head] == 0 && Queue.IsReady)
        {
            throw new InvalidOperationException($"ring {Index}: chain {head} is not in flight (completed twice, or never popped)");
        }

        Retire(head);
        WriteUsed(head, length);
    }

    /// <summary>
    /// Completes a chain popped earlier, from any thread, in any order (an I/O completion, a thread
    /// pool callback, after an <c>await</c>). Write the chain's data first; the ring's worker then
    /// writes the used element, logs the written pages while a migration runs, clears the
    /// inflight mark and notifies the driver, batching completions that arrive together. On the
    /// worker itself (inside <see cref="IVhostUserBackend.HandleEvent"/>) the element is written at
    /// once and published when the call returns. A completion for a chain whose ring was stopped
    /// meanwhile is dropped (<see cref="DiscardedCompletions"/>). Allocates nothing.
    /// </summary>
    /// <param name="chain">The chain, as <see cref="TryPopDescriptorChain"/> returned it.</param>
    /// <param name="length">Bytes written into its writable buffers.</param>
    /// <exception cref="InvalidOperationException">More completions than chains in flight (a chain completed twice).</exception>
    public void Complete(in DescriptorChain chain, uint length)
    {
        ulong entry = ((ulong)chain.Epoch << 48) | ((ulong)chain.Head << 32) | length;
        VhostUserWorker? worker = Worker;
        if (worker is not null && worker.IsCurrentThread)
        {
            Apply(entry);
            _completedOnWorker = true;
            worker.NotePublish(this);
            return;
        }

        if (!_completions.TryEnqueue(entry))
        {
            throw new InvalidOperationException($"ring {Index}: more completions than chains in flight (chain {chain.Head} completed twice?)");
        }

        worker?.SignalCompletions();
    }

    /// <summary>
    /// Asks the ring's worker to call the device for this ring soon (<see cref="IVhostUserBackend.HandleEvent"/>
    /// with the ring's index, as for a kick), from any thread: how a device that produces data on
    /// its own (an input device, a console, a port fed by a socket) gets back onto the worker to
    /// fill the driver's buffers. Requests made before the call coalesce into one call.
    /// </summary>
    public void RequestProcessing()
    {
        Volatile.Write(ref _workRequested, 1);
        Worker?.SignalCompletions();
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
            SignalPeer(logEvent);
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
        else if (call.IsClosed || !SignalPeer(call))
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
            return SignalPeer(error);
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Asks the driver for kicks again; in the polling window it does nothing and returns false, and
    /// so it does for a broken ring (<see cref="IsBroken"/>), one being stopped, and one waiting for
    /// the device's abandoned chains (nothing more will be popped for now; the worker calls the
    /// device for the ring again when that changes).
    /// </summary>
    /// <returns>True when buffers arrived meanwhile (process them before sleeping).</returns>
    public bool EnableNotification()
    {
        if (IsPolling || _broken || _stopping)
        {
            return false;
        }

        bool arrived = Queue.EnableNotification();
        return arrived && !_fenced;
    }

    /// <summary>Tells the driver that kicks are not needed (while processing).</summary>
    public void DisableNotification() => Queue.DisableNotification();

    /// <summary>
    /// Signals a front-end's eventfd without ever blocking: a write blocks only on a blocking
    /// eventfd whose counter is full, so a blocking one is first polled for room (a full counter
    /// is a pending notification anyway). A front-end that fills its own counter between the poll
    /// and the write (deliberately, and after switching its fd to blocking) is the remaining case.
    /// </summary>
    private static bool SignalPeer(EventFd fd)
        => (fd.IsNonBlocking || UnixSocket.WaitReady(fd, Interop.POLLOUT, 0)) && fd.TrySignal();

    /// <summary>
    /// VRING_CALL / VRING_ERR on the back-end channel; false when the channel is closed or broken
    /// (the front-end went away), or has no room: a front-end that does not read its channel (it
    /// waits for a reply from this daemon) still has the notifications queued before, and the
    /// worker never blocks on it. The channel sends notifications without NEED_REPLY.
    /// </summary>
    private bool TrySend(VhostUserBackendChannel channel, bool error)
    {
        try
        {
            if (!UnixSocket.WaitReady(channel.Connection.Handle, Interop.POLLOUT, 0))
            {
                return false;
            }

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

    /// <summary>
    /// Marks the ring broken (worker, or the control thread with the worker paused): the first
    /// time, logs the reason once at Error and signals the error eventfd once; afterwards nothing.
    /// </summary>
    internal void MarkBroken(VirtqueueException reason)
    {
        if (_broken)
        {
            return;
        }

        _broken = true;
        _brokenKicks = 0;
        _brokenLoggedAt = Environment.TickCount64;
        Log.RingBroken(Logger, Index, reason.Reason, reason.Message);
        SignalError();
    }

    /// <summary>A kick (or processing request) for a broken ring, ignored: logged at Trace, at most once per <see cref="BrokenLogIntervalMs"/> (worker).</summary>
    internal void IgnoreKickWhileBroken()
    {
        _brokenKicks++;
        long now = Environment.TickCount64;
        if (now - _brokenLoggedAt >= BrokenLogIntervalMs)
        {
            _brokenLoggedAt = now;
            Log.RingStillBroken(Logger, Index, _brokenKicks);
        }
    }

    /// <summary>The front-end stopped or reset the ring: it may run again (control thread, worker paused).</summary>
    internal void ClearBroken()
    {
        _broken = false;
        _brokenKicks = 0;
    }

    /// <summary>How often a broken ring's ignored kicks are logged.</summary>
    internal const long BrokenLogIntervalMs = 10_000;

    private ILogger Logger => Worker?.Logger ?? NullLogger.Instance;

    /// <summary>Whether <see cref="RequestProcessing"/> was called since the last look (clears it; worker).</summary>
    internal bool TakeProcessingRequest() => Volatile.Read(ref _workRequested) != 0 && Interlocked.Exchange(ref _workRequested, 0) != 0;

    /// <summary>
    /// Applies the completions other threads queued, then publishes and notifies once (worker, or
    /// the control thread while the worker is paused). Entries stay queued while the ring is
    /// unmapped (its memory region was removed and not added back yet).
    /// </summary>
    /// <returns>Whether anything was applied.</returns>
    internal bool DrainCompletions()
    {
        bool any = _completedOnWorker;
        _completedOnWorker = false;
        while (Queue.IsReady && _completions.TryDequeue(out ulong entry))
        {
            Apply(entry);
            any = true;
        }

        if (!Queue.IsReady)
        {
            // Completions of a stopped ring (the epoch moved on) are dropped without the ring.
            while (!_started && _completions.TryDequeue(out ulong stale))
            {
                Apply(stale);
            }
        }

        if (any && Queue.IsReady)
        {
            SignalUsedQueue();
        }

        return any;
    }

    /// <summary>
    /// Waits until every chain in flight is completed, applying completions as they arrive (the
    /// control thread, with the worker paused), for at most <paramref name="timeout"/>.
    /// </summary>
    /// <returns>True when nothing is in flight any more.</returns>
    internal bool DrainInFlight(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            // A device that completes on its worker (from a listener event) completes here.
            Worker?.DeliverListenerEventsWhileParked();
            DrainCompletions();
            if (_inFlightCount == 0 || !Queue.IsReady)
            {
                return _inFlightCount == 0;
            }

            if (Environment.TickCount64 >= deadline)
            {
                return false;
            }

            Thread.Sleep(1);
        }
    }

    /// <summary>
    /// The queue is about to leave its memory snapshot (a memory-table change) while chains are
    /// still in flight: keep that snapshot mapped until each of them completes, because the device
    /// may still write into its buffers (control thread, worker paused).
    /// </summary>
    internal void RetainInFlightMemory()
    {
        if (_inFlightCount == 0 || Queue.Memory is not { } memory || _retired.Count >= byte.MaxValue - 1 || !memory.TryAddReference())
        {
            return;
        }

        var retired = new RetiredMemory(memory);
        _retired.Add(retired);
        byte mark = (byte)(_retired.Count + 1);
        for (int head = 0; head < _inFlight.Length; head++)
        {
            if (_inFlight[head] == 1)
            {
                _inFlight[head] = mark;
                retired.Chains++;
            }
        }
    }

    /// <summary>
    /// The ring stops (control thread, worker paused): chains still in flight are abandoned (their
    /// inflight marks stay for a next back-end; their completions will be dropped), their memory
    /// stays mapped until the connection ends, and a new epoch starts.
    /// </summary>
    /// <param name="fence">Whether the chains keep the ring from taking new ones when it starts again (not for a ring the guest broke).</param>
    internal void AbandonInFlight(bool fence)
    {
        RetainInFlightMemory();
        for (int head = 0; head < _inFlight.Length; head++)
        {
            byte mark = _inFlight[head];
            if (mark != 0)
            {
                (_abandoned ??= [])[((uint)_epoch << 16) | (uint)head] = new Abandoned(mark > 1 ? _retired[mark - 2] : null, fence);
                _abandonedCount++;
                _fencingCount += fence ? 1 : 0;
            }
        }

        // Every retained snapshot still referenced belongs to abandoned chains now.
        _retired.Clear();
        Queue.DiscardInFlight();
        Array.Clear(_inFlight);
        _inFlightCount = 0;
        _completedOnWorker = false;
        _epoch++;
    }

    /// <summary>Chains abandoned when the ring stopped that the device has not completed yet.</summary>
    internal int AbandonedInDevice => Volatile.Read(ref _abandonedCount);

    /// <summary>Whether the ring takes no new chain because of <see cref="AbandonedInDevice"/>.</summary>
    internal bool IsFenced => _fenced;

    /// <summary>
    /// The ring starts (control thread) while the device still has abandoned chains: it takes no new
    /// chain until they completed, for at most <paramref name="wait"/>.
    /// </summary>
    private void Fence(TimeSpan wait)
    {
        Log.StartedFenced(Logger, Index, _fencingCount, wait.TotalSeconds);
        Volatile.Write(ref _fenceDeadline, Environment.TickCount64 + (long)wait.TotalMilliseconds);
        _fenced = true;
        _fenceTimer ??= new Timer(static state => ((Vring)state!).RequestProcessing(), this, Timeout.Infinite, Timeout.Infinite);
        _fenceTimer.Change(wait + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The fence holds (worker): false once the deadline passed, which lifts it with an error.</summary>
    private bool IsStillFenced()
    {
        if (Environment.TickCount64 < Volatile.Read(ref _fenceDeadline))
        {
            return true;
        }

        _fenced = false;
        Log.FenceExpired(Logger, Index, _fencingCount);
        return false;
    }

    /// <summary>
    /// Releases the retained memory snapshots (the connection ended) except those of abandoned
    /// chains the device has not completed: their buffers stay mapped until it does, because its
    /// I/O may still write into them.
    /// </summary>
    internal void ReleaseRetainedMemory()
    {
        foreach (RetiredMemory r in _retired)
        {
            r.Memory.Release();
        }

        _retired.Clear();
    }

    /// <summary>Releases the snapshots abandoned chains still keep (the daemon is disposed: no worker applies their completions any more).</summary>
    internal void ReleaseAbandoned()
    {
        if (_abandoned is null)
        {
            return;
        }

        var released = new HashSet<RetiredMemory>();
        foreach (Abandoned a in _abandoned.Values)
        {
            if (a.Memory is { } r && released.Add(r))
            {
                r.Memory.Release();
            }
        }

        _abandoned.Clear();
        Volatile.Write(ref _abandonedCount, 0);
        _fencingCount = 0;
        _fenced = false;
        _fenceTimer?.Dispose();
        _fenceTimer = null;
    }

    private void Apply(ulong entry)
    {
        ushort epoch = (ushort)(entry >> 48);
        ushort head = (ushort)(entry >> 32);
        uint length = (uint)entry;
        if (epoch != _epoch)
        {
            _discarded++;
            ForgetAbandoned(epoch, head);
            return;
        }

        if (head >= _inFlight.Length || _inFlight[head] == 0 || !Queue.IsReady)
        {
            _discarded++;
            return;
        }

        Retire(head);
        WriteUsed(head, length);
    }

    /// <summary>
    /// An abandoned chain completed (late, dropped): its snapshot is released when it was the last
    /// chain keeping it, and the last one lifts the ring's fence (the worker then looks at the ring).
    /// </summary>
    private void ForgetAbandoned(ushort epoch, ushort head)
    {
        if (_abandoned is null || !_abandoned.Remove(((uint)epoch << 16) | head, out Abandoned a))
        {
            return;
        }

        if (a.Memory is { } r && --r.Chains == 0)
        {
            r.Memory.Release();
        }

        Interlocked.Decrement(ref _abandonedCount);
        if (a.Fences && --_fencingCount == 0 && _fenced)
        {
            _fenced = false;
            _fenceTimer?.Change(Timeout.Infinite, Timeout.Infinite);
            Log.AbandonedCompleted(Logger, Index);
            RequestProcessing();
        }
    }

    /// <summary>Clears a head's in-flight mark and releases a retained snapshot whose last chain it was.</summary>
    private void Retire(ushort head)
    {
        if (head >= _inFlight.Length)
        {
            return;
        }

        byte mark = _inFlight[head];
        if (mark == 0)
        {
            return;
        }

        _inFlight[head] = 0;
        _inFlightCount--;
        if (mark > 1)
        {
            RetiredMemory r = _retired[mark - 2];
            if (--r.Chains == 0)
            {
                r.Memory.Release();
            }
        }
    }

    private void WriteUsed(ushort head, uint length)
    {
        Virtqueue queue = Queue;
        if (length != 0 && queue.Memory?.DirtyLog is not null)
        {
            LogWritten(queue, head, length);
        }

        InflightTracking? inflight = Inflight;
        if (inflight is not null)
        {
            inflight.AddUsed(queue, head, length);
        }
        else
        {
            queue.AddUsedDeferred(head, length);
        }

        if (length != 0 && _metrics.Bytes.Enabled)
        {
            _metrics.Bytes.Add(length, _tag);
        }
    }

    /// <summary>
    /// Marks the first <paramref name="length"/> bytes of the chain's writable buffers dirty (while
    /// the front-end logs): after the device's data stores and before the used element makes
    /// them visible, so no device logs by hand. A chain the guest rewrote meanwhile is its own loss.
    /// </summary>
    private static void LogWritten(Virtqueue queue, ushort head, uint length)
    {
        if (!queue.TryGetInflightChain(head, out DescriptorChain chain))
        {
            return;
        }

        GuestMemory memory = queue.Memory!;
        ulong left = length;
        try
        {
            foreach (VirtqBuffer b in chain)
            {
                if (!b.IsWriteOnly)
                {
                    continue;
                }

                ulong n = Math.Min(left, b.Length);
                memory.MarkDirty(b.Address, n);
                left -= n;
                if (left == 0)
                {
                    return;
                }
            }
        }
        catch (VirtqueueException)
        {
        }
    }

    /// <summary>A memory snapshot kept mapped for the chains in flight when the queue left it.</summary>
    /// <summary>An abandoned chain: the snapshot it keeps mapped, and whether it fences the ring.</summary>
    private readonly record struct Abandoned(RetiredMemory? Memory, bool Fences);

    private sealed class RetiredMemory(GuestMemory memory)
    {
        public GuestMemory Memory { get; } = memory;

        public int Chains { get; set; }
    }
}
