using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Vhost;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// One worker thread of a <see cref="VhostUserDaemon"/> (the rust-vmm <c>VringEpollHandler</c>):
/// its own epoll set over the kick eventfds of its queue group, a wake-up eventfd the daemon uses
/// to stop or pause it, the device's optional exit eventfd, and any fds the device registers with
/// <see cref="RegisterListener"/>. Each ready event becomes one
/// <see cref="IVhostUserBackend.HandleEvent"/> call on this thread.
/// </summary>
/// <remarks>
/// <para>Event data values <c>0</c> to <see cref="IVhostUserBackend.QueueCount"/> (inclusive: the
/// last one is the exit event) and <see cref="ulong.MaxValue"/> are reserved.</para>
/// <para>Polling mode (<see cref="IVhostUserBackend.GetPollingTime"/>): after an event the worker
/// keeps calling the device for its ready rings with notifications disabled until the rings have
/// been idle for the polling window, then re-enables notifications and checks the rings once more
/// so a buffer published meanwhile is not left without a kick.</para>
/// </remarks>
public sealed class VringEpollHandler : IDisposable
{
    private const ulong WakeData = ulong.MaxValue;
    private const ulong CompletionsData = ulong.MaxValue - 1;
    private const int EventBatch = 32;

    private readonly IVhostUserBackend _backend;
    private readonly Vring[] _vrings;
    private readonly Vring?[] _byQueue;
    private readonly int _queueCount;
    private readonly ILogger _logger;
    private readonly long _pollTicks;
    private readonly Epoll _epoll;
    private readonly EventFd _wake;
    private readonly EventFd _completionsEvent;
    private readonly EventFd? _exitEvent;
    private readonly object _gate = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private volatile int _pauseRequests;
    private bool _parked;
    private bool _running;
    private int _disposed;
    private int _threadId;
    private int _completionsPending;
    private int _listeners;

    internal VringEpollHandler(IVhostUserBackend backend, Vring[] vrings, int threadIndex, ILogger logger)
    {
        _backend = backend;
        _vrings = vrings;
        _queueCount = backend.QueueCount;
        _byQueue = new Vring?[_queueCount];
        foreach (Vring v in vrings)
        {
            _byQueue[v.Index] = v;
        }

        ThreadIndex = threadIndex;
        _logger = logger;
        TimeSpan poll = backend.GetPollingTime(threadIndex);
        _pollTicks = poll <= TimeSpan.Zero ? 0 : (long)(poll.TotalSeconds * Stopwatch.Frequency);
        _epoll = new Epoll();
        try
        {
            _wake = new EventFd(EventFdFlags.NonBlocking);
            _epoll.Add(_wake, (uint)VringEpollEvents.In, WakeData);
            _completionsEvent = new EventFd(EventFdFlags.NonBlocking);
            _epoll.Add(_completionsEvent, (uint)VringEpollEvents.In, CompletionsData);
            _exitEvent = backend.CreateExitEvent(threadIndex);
            if (_exitEvent is not null)
            {
                _epoll.Add(_exitEvent, (uint)VringEpollEvents.In, (ulong)_queueCount);
            }
        }
        catch
        {
            _completionsEvent?.Dispose();
            _wake?.Dispose();
            _epoll.Dispose();
            throw;
        }

        foreach (Vring v in vrings)
        {
            v.Worker = this;
        }
    }

    /// <summary>The worker's index (the order of <see cref="IVhostUserBackend.QueueIndicesPerThread"/>).</summary>
    public int ThreadIndex { get; }

    /// <summary>The rings this worker serves, in ascending queue order.</summary>
    public IReadOnlyList<Vring> Vrings => _vrings;

    /// <summary>Whether the worker thread is running.</summary>
    public bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _running;
            }
        }
    }

    /// <summary>
    /// Watches <paramref name="fd"/> on this worker: when it is ready,
    /// <see cref="IVhostUserBackend.HandleEvent"/> is called with <paramref name="data"/> as the
    /// device event. The caller keeps ownership of the fd and must unregister it before closing it.
    /// </summary>
    /// <param name="fd">The fd.</param>
    /// <param name="events">The events to wait for.</param>
    /// <param name="data">The device event value: greater than <see cref="IVhostUserBackend.QueueCount"/> and below <see cref="ulong.MaxValue"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="data"/> is reserved.</exception>
    /// <exception cref="VhostException">epoll_ctl failed (for example EEXIST when the fd is already registered).</exception>
    public void RegisterListener(SafeHandle fd, VringEpollEvents events, ulong data)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (data <= (ulong)_queueCount || data == WakeData)
        {
            throw new ArgumentOutOfRangeException(nameof(data), data, $"event data 0..{_queueCount} and 2^64-1 are reserved for the rings, the exit event and the daemon");
        }

        if (data > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(data), data, "event data must fit the device event (at most int.MaxValue)");
        }

        _epoll.Add(fd, (uint)events, data);
        Interlocked.Increment(ref _listeners);
    }

    /// <summary>Stops watching <paramref name="fd"/>.</summary>
    /// <param name="fd">An fd registered with <see cref="RegisterListener"/>.</param>
    /// <exception cref="VhostException">epoll_ctl failed (ENOENT when it was not registered).</exception>
    public void UnregisterListener(SafeHandle fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        _epoll.Remove(fd);
        Interlocked.Decrement(ref _listeners);
    }

    /// <summary>Stops the thread (if running) and releases the epoll set and eventfds. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Stop();
        _exitEvent?.Dispose();
        _completionsEvent.Dispose();
        _wake.Dispose();
        _epoll.Dispose();
    }

    /// <summary>The daemon's logger.</summary>
    internal ILogger Logger => _logger;

    /// <summary>Whether the caller runs on this worker's thread.</summary>
    internal bool IsCurrentThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _threadId);

    /// <summary>Wakes the worker to apply completions or serve processing requests (any thread; coalesced).</summary>
    internal void SignalCompletions()
    {
        if (Volatile.Read(ref _completionsPending) == 0 && Interlocked.Exchange(ref _completionsPending, 1) == 0)
        {
            try
            {
                _completionsEvent.TrySignal();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    internal void Start()
    {
        lock (_gate)
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException("the worker was already started");
            }

            _running = true;
            _thread = new Thread(Run) { IsBackground = true, Name = $"vhost-user worker {ThreadIndex}" };
            _thread.Start();
        }
    }

    internal void Stop()
    {
        Thread? thread;
        lock (_gate)
        {
            thread = _thread;
            _stopping = true;
        }

        if (thread is null || thread == Thread.CurrentThread)
        {
            return;
        }

        WakeUp();
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }

        thread.Join();
    }

    /// <summary>Parks the worker between two events (no-op when it is not running or when called on it).</summary>
    internal PauseScope Pause()
    {
        if (Thread.CurrentThread == _thread)
        {
            return default;
        }

        lock (_gate)
        {
            _pauseRequests++;
            if (!_running)
            {
                return new PauseScope(this);
            }
        }

        WakeUp();
        lock (_gate)
        {
            while (_running && !_parked)
            {
                Monitor.Wait(_gate);
            }
        }

        return new PauseScope(this);
    }

    /// <summary>
    /// Watches a ring's kick eventfd, edge-triggered: the worker never reads a front-end's kick
    /// fd, so a blocking eventfd (or one shared by several rings, or drained by the front-end
    /// itself) can never block it. Each write to the fd is one wake-up.
    /// </summary>
    /// <summary>
    /// Delivers the device's ready listener events (<see cref="RegisterListener"/>) to
    /// <see cref="IVhostUserBackend.HandleEvent"/> on the calling thread, while this worker is
    /// parked and the control thread waits for chains in flight (a ring stop, a memory change, a
    /// reset): a device that reaps its completions on its worker (an io_uring eventfd) still
    /// finishes them, and the wait ends as soon as they are done. The worker being parked, the
    /// device's worker state is not touched concurrently. Kicks are not delivered (each ring gets
    /// one look when the worker resumes), nor are the daemon's own events.
    /// </summary>
    internal void DeliverListenerEventsWhileParked()
    {
        if (Volatile.Read(ref _listeners) == 0 || _disposed != 0)
        {
            return;
        }

        Span<EpollEvent> events = stackalloc EpollEvent[EventBatch];
        int n = _epoll.Wait(events, 0);
        for (int i = 0; i < n; i++)
        {
            ulong data = events[i].Data;
            if (data > (ulong)_queueCount && data < CompletionsData)
            {
                Dispatch((int)data, (VringEpollEvents)events[i].Events);
            }
        }
    }

    internal void AddKick(Vring vring)
    {
        if (vring.Kick is { } kick)
        {
            _epoll.Add(kick, (uint)(VringEpollEvents.In | VringEpollEvents.EdgeTriggered), (ulong)vring.Index);
        }
    }

    internal void RemoveKick(Vring vring)
    {
        if (vring.Kick is { IsClosed: false } kick)
        {
            try
            {
                _epoll.Remove(kick);
            }
            catch (VhostException e) when (e.Errno is Errno.ENOENT or Errno.EPERM or Errno.EBADF)
            {
                // Never registered (the add failed, or the fd is of a kind epoll refuses).
            }
        }
    }

    private void Resume()
    {
        lock (_gate)
        {
            _pauseRequests--;
            Monitor.PulseAll(_gate);
        }
    }

    private void WakeUp()
    {
        try
        {
            _wake.TrySignal();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Run()
    {
        Volatile.Write(ref _threadId, Environment.CurrentManagedThreadId);
        try
        {
            Span<EpollEvent> events = stackalloc EpollEvent[EventBatch];
            while (!_stopping)
            {
                int n = _epoll.Wait(events, -1);
                bool ringWork = false;
                for (int i = 0; i < n && !_stopping; i++)
                {
                    if (_pauseRequests != 0)
                    {
                        // The rings may have changed while parked: drop the rest of this batch
                        // (Park asks for one look at every ring afterwards) and wait again.
                        Park();
                        break;
                    }

                    ulong data = events[i].Data;
                    var set = (VringEpollEvents)events[i].Events;
                    if (data == WakeData)
                    {
                        _wake.TryRead(out _);
                        continue;
                    }

                    if (data == CompletionsData)
                    {
                        ServiceRequests();
                        ringWork = true;
                        continue;
                    }

                    if (data == (ulong)_queueCount)
                    {
                        Log.WorkerExitEvent(_logger, ThreadIndex);
                        return;
                    }

                    if (data < (ulong)_queueCount)
                    {
                        // Not read (edge-triggered). A kick for a ring that is not ready is not
                        // lost: starting or enabling the ring asks for processing.
                        Vring? vring = _byQueue[(int)data];
                        if (vring is null || !vring.IsReady)
                        {
                            if (vring is { IsBroken: true })
                            {
                                vring.IgnoreKickWhileBroken();
                            }

                            continue;
                        }

                        vring.CountKick();
                        ringWork = true;
                    }

                    Dispatch((int)data, set);
                }

                if (_pauseRequests != 0)
                {
                    Park();
                }
                else if (_pollTicks != 0 && ringWork && !_stopping)
                {
                    // Only after ring work: polling right after a pause (nothing ready yet) would
                    // keep a ring that starts now waiting for the whole window.
                    Poll();
                }
            }
        }
        catch (Exception e)
        {
            Log.WorkerFailed(_logger, ThreadIndex, e);
        }
        finally
        {
            lock (_gate)
            {
                _running = false;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void Park()
    {
        lock (_gate)
        {
            _parked = true;
            Monitor.PulseAll(_gate);
            while (_pauseRequests != 0 && !_stopping)
            {
                Monitor.Wait(_gate);
            }

            _parked = false;
        }

        // Kicks are edge-triggered: the events of the batch a pause cut short are gone, and the
        // rings may have changed meanwhile. Every ring gets one look when the worker goes on.
        foreach (Vring v in _vrings)
        {
            v.RequestProcessing();
        }
    }

    private void Dispatch(int deviceEvent, VringEpollEvents events)
    {
        try
        {
            _backend.HandleEvent(deviceEvent, events, _vrings, ThreadIndex);
        }
        catch (VirtqueueException e) when (deviceEvent < _queueCount && _byQueue[deviceEvent] is not null)
        {
            // The guest's ring (a descriptor loop, a buffer outside memory, ...) reached the worker
            // through the device: the ring is broken, logged and signalled once, not per event.
            _byQueue[deviceEvent]!.MarkBroken(e);
        }
        catch (Exception e)
        {
            Log.HandleEventFailed(_logger, deviceEvent, ThreadIndex, e);
            if (deviceEvent < _queueCount && _byQueue[deviceEvent] is { } vring)
            {
                vring.SignalError();
            }
        }

        // Completions the device made on this thread (Vring.Complete inside HandleEvent) and any
        // that arrived from other threads meanwhile: one publish and one notification per ring.
        foreach (Vring v in _vrings)
        {
            v.DrainCompletions();
        }
    }

    /// <summary>Applies the completions other threads queued and calls the device for rings that asked for processing.</summary>
    private void ServiceRequests()
    {
        _completionsEvent.TryRead(out _);
        Volatile.Write(ref _completionsPending, 0);
        foreach (Vring v in _vrings)
        {
            v.DrainCompletions();
            if (v.TakeProcessingRequest() && v.IsReady)
            {
                Dispatch(v.Index, VringEpollEvents.In);
            }
        }
    }

    private void Poll()
    {
        foreach (Vring v in _vrings)
        {
            if (v.IsReady)
            {
                v.IsPolling = true;
                v.DisableNotification();
            }
        }

        long deadline = Stopwatch.GetTimestamp() + _pollTicks;
        while (!_stopping && _pauseRequests == 0 && Stopwatch.GetTimestamp() < deadline)
        {
            bool progress = false;
            if (Volatile.Read(ref _completionsPending) != 0)
            {
                ServiceRequests();
                progress = true;
            }

            foreach (Vring v in _vrings)
            {
                // A ring that became ready during the window (started or enabled while another
                // streams) is polled too: it must not wait for the window to end.
                if (!v.IsPolling && v.IsReady)
                {
                    v.IsPolling = true;
                    v.DisableNotification();
                    progress = true;
                }

                if (v.IsPolling && v.IsReady)
                {
                    long before = v.PoppedCount;
                    Dispatch(v.Index, VringEpollEvents.In);
                    progress |= v.PoppedCount != before;
                }
            }

            if (progress)
            {
                deadline = Stopwatch.GetTimestamp() + _pollTicks;
            }
            else
            {
                Thread.SpinWait(20);
            }
        }

        foreach (Vring v in _vrings)
        {
            if (!v.IsPolling)
            {
                continue;
            }

            v.IsPolling = false;

            // Re-check after enabling: a buffer published between the last look and the enable
            // would otherwise wait for a kick the driver was told it need not send.
            if (v.IsReady && v.Queue.EnableNotification())
            {
                Dispatch(v.Index, VringEpollEvents.In);
            }
        }
    }

    /// <summary>Keeps a worker parked until disposed.</summary>
    internal readonly struct PauseScope(VringEpollHandler? handler) : IDisposable
    {
        public void Dispose() => handler?.Resume();
    }
}
