using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Vhost;

namespace VhostUserBackend;

/// <summary>
/// One worker thread and its epoll set: the thread behind one or more <see cref="VhostUserWorker"/>s.
/// A daemon's worker owns its thread; with a <see cref="VhostUserWorkerGroup"/>, the workers of
/// several daemons (the ports of a virtual switch) share one, so one thread (one poller) serves
/// every ring of every port it carries.
/// </summary>
/// <remarks>
/// <para>Epoll data: <see cref="WakeData"/> and <see cref="CompletionsData"/> are the thread's own
/// eventfds; any other value is <c>slot &lt;&lt; 32 | value</c>, the slot naming the attached
/// handler and the value its event (a queue index for a kick, the queue count for the device's
/// exit event, a device listener's data). A slot is never reused.</para>
/// <para>Pausing (the control thread of any attached daemon): the thread parks between two
/// events; every attached ring gets one look when it resumes, because edge-triggered kicks of
/// the batch a pause cut short are gone.</para>
/// </remarks>
internal sealed class VringWorkerThread : IDisposable
{
    internal const ulong WakeData = ulong.MaxValue;
    internal const ulong CompletionsData = ulong.MaxValue - 1;
    private const int EventBatch = 32;

    private readonly string _name;
    private readonly ILogger _logger;
    private readonly bool _shared;
    private readonly Epoll _epoll;
    private readonly EventFd _wake;
    private readonly EventFd _completionsEvent;
    private readonly object _gate = new();
    private VhostUserWorker?[] _slots = [];
    private VhostUserWorker[] _attached = [];
    private long _pollTicks;
    private Thread? _thread;
    private volatile bool _stopping;
    private volatile int _pauseRequests;
    private bool _parked;
    private bool _running;
    private int _disposed;
    private int _threadId;
    private int _completionsPending;
    private int _listeners;
    private Vring?[] _publish = new Vring?[16];
    private int _publishCount;

    /// <param name="name">The thread's name.</param>
    /// <param name="logger">Where failures go.</param>
    /// <param name="shared">Whether the thread belongs to a <see cref="VhostUserWorkerGroup"/> (a device's exit event then detaches that device only).</param>
    /// <param name="pollingTime">The polling window (zero: notification-driven); for an owned thread, the device's.</param>
    internal VringWorkerThread(string name, ILogger logger, bool shared, TimeSpan pollingTime)
    {
        _name = name;
        _logger = logger;
        _shared = shared;
        _pollTicks = pollingTime <= TimeSpan.Zero ? 0 : (long)(pollingTime.TotalSeconds * Stopwatch.Frequency);
        _epoll = new Epoll();
        try
        {
            _wake = new EventFd(EventFdFlags.NonBlocking);
            _epoll.Add(_wake, (uint)VringEpollEvents.In, WakeData);
            _completionsEvent = new EventFd(EventFdFlags.NonBlocking);
            _epoll.Add(_completionsEvent, (uint)VringEpollEvents.In, CompletionsData);
        }
        catch
        {
            _wake?.Dispose();
            _epoll.Dispose();
            throw;
        }
    }

    internal Epoll Epoll => _epoll;

    internal ILogger Logger => _logger;

    /// <summary>Whether the thread runs.</summary>
    internal bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _running;
            }
        }
    }

    /// <summary>Whether the caller runs on this thread.</summary>
    internal bool IsCurrentThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _threadId);

    /// <summary>Adds <paramref name="handler"/> (its rings are not started yet); returns its slot.</summary>
    internal int Attach(VhostUserWorker handler)
    {
        using (Pause())
        {
            int slot = _slots.Length;
            _slots = [.. _slots, handler];
            _attached = [.. _attached, handler];
            return slot;
        }
    }

    /// <summary>Removes a handler: its events are ignored from now on (the caller removed its fds).</summary>
    internal void Detach(VhostUserWorker handler)
    {
        using (Pause())
        {
            VhostUserWorker?[] slots = [.. _slots];
            slots[handler.Slot] = null;
            _slots = slots;
            _attached = [.. _attached.Where(h => h != handler)];
        }
    }

    /// <summary>
    /// A ring of any worker on this thread got a completion on the thread itself (a device that
    /// completes another port's chain, for example): it is published and its driver notified once
    /// the current device call returns (<see cref="PublishNoted"/>). This thread only.
    /// </summary>
    internal void NotePublish(Vring vring)
    {
        if (vring.PublishNoted)
        {
            return;
        }

        vring.PublishNoted = true;
        if (_publishCount == _publish.Length)
        {
            Array.Resize(ref _publish, _publish.Length * 2);
        }

        _publish[_publishCount++] = vring;
    }

    /// <summary>Publishes and notifies the rings noted by <see cref="NotePublish"/> (this thread, after a device call).</summary>
    internal void PublishNoted()
    {
        for (int i = 0; i < _publishCount; i++)
        {
            Vring v = _publish[i]!;
            _publish[i] = null;
            v.PublishNoted = false;
            v.DrainCompletions();
        }

        _publishCount = 0;
    }

    internal void ListenerAdded() => Interlocked.Increment(ref _listeners);

    internal void ListenerRemoved() => Interlocked.Decrement(ref _listeners);

    /// <summary>Wakes the thread to apply completions or serve processing requests (any thread; coalesced).</summary>
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
            _thread = new Thread(Run) { IsBackground = true, Name = _name };
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

    /// <summary>Parks the thread between two events (no-op when it is not running or when called on it).</summary>
    /// <param name="whileWaiting">Called every 100 ms while the thread has not parked yet (it may be asleep in a page fault only the front-end can resolve: postcopy); must not wait for the thread.</param>
    internal PauseScope Pause(Action? whileWaiting = null)
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
                if (whileWaiting is null)
                {
                    Monitor.Wait(_gate);
                }
                else if (!Monitor.Wait(_gate, 100))
                {
                    whileWaiting();
                }
            }
        }

        return new PauseScope(this);
    }

    /// <summary>
    /// Delivers the devices' ready listener events on the calling thread while this thread is
    /// parked and a control thread waits for chains in flight (see
    /// <see cref="VhostUserWorker.DeliverListenerEventsWhileParked"/>).
    /// </summary>
    internal void DeliverListenerEventsWhileParked()
    {
        if (Volatile.Read(ref _listeners) == 0 || _disposed != 0)
        {
            return;
        }

        Span<EpollEvent> events = stackalloc EpollEvent[EventBatch];
        int n = _epoll.Wait(events, 0);
        VhostUserWorker?[] slots = _slots;
        for (int i = 0; i < n; i++)
        {
            ulong data = events[i].Data;
            if (data < CompletionsData && (int)(data >> 32) < slots.Length && slots[(int)(data >> 32)] is { } handler)
            {
                handler.DeliverListenerEvent((uint)data, (VringEpollEvents)events[i].Events);
            }
        }
    }

    /// <summary>Stops the thread (if running) and releases the epoll set and eventfds. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Stop();
        _completionsEvent.Dispose();
        _wake.Dispose();
        _epoll.Dispose();
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
                VhostUserWorker?[] slots = _slots;
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

                    int slot = (int)(data >> 32);
                    if (slot >= slots.Length || slots[slot] is not { } handler)
                    {
                        continue;
                    }

                    switch (handler.HandleEvent((uint)data, (VringEpollEvents)events[i].Events))
                    {
                        case VhostUserWorker.EventOutcome.RingWork:
                            ringWork = true;
                            break;
                        case VhostUserWorker.EventOutcome.Exit when !_shared:
                            return;
                        case VhostUserWorker.EventOutcome.Exit:
                            // A shared thread goes on serving the other devices.
                            handler.MarkDetached();
                            Detach(handler);
                            slots = _slots;
                            break;
                    }
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
            Log.WorkerThreadFailed(_logger, _name, e);
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
        // rings may have changed meanwhile. Every ring gets one look when the thread goes on.
        foreach (VhostUserWorker h in _attached)
        {
            h.RequestProcessingOfEveryRing();
        }
    }

    /// <summary>Applies the completions other threads queued and calls the devices for rings that asked for processing.</summary>
    private void ServiceRequests()
    {
        _completionsEvent.TryRead(out _);
        Volatile.Write(ref _completionsPending, 0);
        foreach (VhostUserWorker h in _attached)
        {
            h.ServiceRequests();
        }
    }

    /// <summary>
    /// Keeps calling the devices for every ready ring of every attached handler, notifications
    /// off, until all of them were idle for the polling window. Every ring gets a turn in every
    /// round, so a busy ring cannot starve another (of the same device or of another port).
    /// </summary>
    private void Poll()
    {
        VhostUserWorker[] attached = _attached;
        long deadline = Stopwatch.GetTimestamp() + _pollTicks;
        while (!_stopping && _pauseRequests == 0 && Stopwatch.GetTimestamp() < deadline)
        {
            bool progress = false;
            if (Volatile.Read(ref _completionsPending) != 0)
            {
                ServiceRequests();
                progress = true;
            }

            foreach (VhostUserWorker h in attached)
            {
                progress |= h.PollRound();
            }

            if (progress)
            {
                deadline = Stopwatch.GetTimestamp() + _pollTicks;
            }
            else
            {
                // One pause between empty rounds, not more: the round trip to the driver is the
                // latency of the next frame (measured: twenty took 38 % of the worker's samples
                // in 64 B port-to-port polling; with one, throughput was the same within the
                // host's noise, and single-port sink polling 7.3 against 6.8 Mpps).
                Thread.SpinWait(1);
            }
        }

        foreach (VhostUserWorker h in attached)
        {
            h.EndPolling();
        }
    }

    /// <summary>Keeps a worker parked until disposed.</summary>
    internal readonly struct PauseScope(VringWorkerThread? thread) : IDisposable
    {
        public void Dispose() => thread?.Resume();
    }
}
