using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Vhost;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// One worker of a <see cref="VhostUserDaemon"/> (the rust-vmm <c>VringEpollHandler</c>): the rings
/// of one queue group, the device's optional exit eventfd and any fds the device registers with
/// <see cref="RegisterListener"/>, served on one thread. Each ready event becomes one
/// <see cref="IVhostUserBackend.HandleEvent"/> call on that thread. The thread is the worker's own,
/// or, with <see cref="VhostUserDaemonOptions.WorkerGroup"/>, one thread of a
/// <see cref="VhostUserWorkerGroup"/> that serves the workers of several daemons (the ports of a
/// switch), so a device may touch the rings of another port served by the same thread.
/// </summary>
/// <remarks>
/// <para>Event data values <c>0</c> to <see cref="IVhostUserBackend.QueueCount"/> (inclusive: the
/// last one is the exit event) are reserved, and a listener's data must fit an <see cref="int"/>.</para>
/// <para>Polling mode (<see cref="IVhostUserBackend.GetPollingTime"/>, or the group's polling
/// time): after an event the thread keeps calling the devices for their ready rings with
/// notifications disabled until every ring has been idle for the polling window, then re-enables
/// notifications and checks the rings once more so a buffer published meanwhile is not left
/// without a kick. Every ring gets a turn in every round: a busy ring cannot starve another.</para>
/// </remarks>
public sealed partial class VhostUserWorker : IDisposable
{
    private readonly IVhostUserBackend _backend;
    private readonly Vring[] _vrings;
    private readonly Vring?[] _byQueue;
    private readonly int _queueCount;
    private readonly VringWorkerThread _thread;
    private readonly bool _ownsThread;
    private readonly EventFd? _exitEvent;
    private int _disposed;
    private int _detached;

    internal VhostUserWorker(IVhostUserBackend backend, Vring[] vrings, int workerIndex, ILogger logger, VringWorkerThread? sharedThread = null)
    {
        _backend = backend;
        _vrings = vrings;
        _queueCount = backend.QueueCount;
        _byQueue = new Vring?[_queueCount];
        foreach (Vring v in vrings)
        {
            _byQueue[v.Index] = v;
        }

        Index = workerIndex;
        _ownsThread = sharedThread is null;
        _thread = sharedThread ?? new VringWorkerThread($"vhost-user worker {workerIndex}", logger, shared: false, backend.GetPollingTime(workerIndex));
        try
        {
            Slot = _thread.Attach(this);
            _exitEvent = backend.CreateExitEvent(workerIndex);
            if (_exitEvent is not null)
            {
                _thread.Epoll.Add(_exitEvent, (uint)VringEpollEvents.In, Encode((uint)_queueCount));
            }
        }
        catch
        {
            _exitEvent?.Dispose();
            if (_ownsThread)
            {
                _thread.Dispose();
            }
            else
            {
                _thread.Detach(this);
            }

            throw;
        }

        foreach (Vring v in vrings)
        {
            v.Worker = this;
        }
    }

    /// <summary>What one event meant for the thread's loop.</summary>
    internal enum EventOutcome
    {
        /// <summary>Nothing to poll for (a listener, a kick for a ring that is not ready).</summary>
        None,

        /// <summary>A ring was served: polling may follow.</summary>
        RingWork,

        /// <summary>The device's exit event fired.</summary>
        Exit,
    }

    /// <summary>The worker's index (the order of <see cref="IVhostUserBackend.QueuesPerWorker"/>).</summary>
    public int Index { get; }

    /// <summary>The rings this worker serves, in ascending queue order.</summary>
    public IReadOnlyList<Vring> Vrings => _vrings;

    /// <summary>Whether the worker's thread is running.</summary>
    public bool IsRunning => _thread.IsRunning && Volatile.Read(ref _detached) == 0;

    /// <summary>This worker's slot on its thread (the high half of its epoll data).</summary>
    internal int Slot { get; }

    /// <summary>The daemon's logger.</summary>
    internal ILogger Logger => _thread.Logger;

    /// <summary>Whether the caller runs on this worker's thread (for a shared thread: any worker on it).</summary>
    internal bool IsCurrentThread => _thread.IsCurrentThread;

    /// <summary>
    /// Watches <paramref name="fd"/> on this worker: when it is ready,
    /// <see cref="IVhostUserBackend.HandleEvent"/> is called with <paramref name="data"/> as the
    /// device event. The caller keeps ownership of the fd and must unregister it before closing it.
    /// </summary>
    /// <param name="fd">The fd.</param>
    /// <param name="events">The events to wait for.</param>
    /// <param name="data">The device event value: greater than <see cref="IVhostUserBackend.QueueCount"/>, at most <see cref="int.MaxValue"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="data"/> is reserved.</exception>
    /// <exception cref="VhostException">epoll_ctl failed (for example EEXIST when the fd is already registered).</exception>
    public void RegisterListener(SafeHandle fd, VringEpollEvents events, ulong data)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (data <= (ulong)_queueCount)
        {
            throw new ArgumentOutOfRangeException(nameof(data), data, $"event data 0..{_queueCount} are reserved for the rings and the exit event");
        }

        if (data > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(data), data, "event data must fit the device event (at most int.MaxValue)");
        }

        _thread.Epoll.Add(fd, (uint)events, Encode((uint)data));
        _thread.ListenerAdded();
    }

    /// <summary>Stops watching <paramref name="fd"/>.</summary>
    /// <param name="fd">An fd registered with <see cref="RegisterListener"/>.</param>
    /// <exception cref="VhostException">epoll_ctl failed (ENOENT when it was not registered).</exception>
    public void UnregisterListener(SafeHandle fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        _thread.Epoll.Remove(fd);
        _thread.ListenerRemoved();
    }

    /// <summary>Stops serving (the thread, when the worker owns it) and releases the exit eventfd; a shared thread goes on for the other workers. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Stop();
        if (_ownsThread)
        {
            _thread.Dispose();
        }

        _exitEvent?.Dispose();
    }

    /// <summary>Wakes the worker to apply completions or serve processing requests (any thread; coalesced).</summary>
    internal void SignalCompletions() => _thread.SignalCompletions();

    internal void Start()
    {
        if (_ownsThread)
        {
            _thread.Start();
        }
    }

    internal void Stop()
    {
        if (_ownsThread)
        {
            _thread.Stop();
        }
        else if (Interlocked.Exchange(ref _detached, 1) == 0)
        {
            if (_exitEvent is { IsClosed: false } exit)
            {
                TryRemove(exit);
            }

            _thread.Detach(this);
        }
    }

    /// <summary>The device's exit event detached this worker from its shared thread.</summary>
    internal void MarkDetached() => Volatile.Write(ref _detached, 1);

    /// <summary>Parks the worker's thread between two events (no-op when it is not running or when called on it).</summary>
    internal VringWorkerThread.PauseScope Pause(Action? whileWaiting = null) => _thread.Pause(whileWaiting);

    /// <summary>
    /// Delivers the device's ready listener events (<see cref="RegisterListener"/>) to
    /// <see cref="IVhostUserBackend.HandleEvent"/> on the calling thread, while this worker's
    /// thread is parked and the control thread waits for chains in flight (a ring stop, a memory
    /// change, a reset): a device that reaps its completions on its worker (an io_uring eventfd)
    /// still finishes them, and the wait ends as soon as they are done. The thread being parked,
    /// the device's worker state is not touched concurrently. Kicks are not delivered (each ring
    /// gets one look when the thread resumes), nor are the daemon's own events.
    /// </summary>
    internal void DeliverListenerEventsWhileParked() => _thread.DeliverListenerEventsWhileParked();

    /// <summary>
    /// Watches a ring's kick eventfd, edge-triggered: the worker never reads a front-end's kick
    /// fd, so a blocking eventfd (or one shared by several rings, or drained by the front-end
    /// itself) can never block it. Each write to the fd is one wake-up.
    /// </summary>
    internal void AddKick(Vring vring)
    {
        if (vring.Kick is { } kick)
        {
            _thread.Epoll.Add(kick, (uint)(VringEpollEvents.In | VringEpollEvents.EdgeTriggered), Encode((uint)vring.Index));
        }
    }

    internal void RemoveKick(Vring vring)
    {
        if (vring.Kick is { IsClosed: false } kick)
        {
            TryRemove(kick);
        }
    }

    /// <summary>One event of this worker on its thread (the epoll data's low half).</summary>
    internal EventOutcome HandleEvent(uint value, VringEpollEvents set)
    {
        if (value == (uint)_queueCount)
        {
            Log.WorkerExitEvent(Logger, Index);
            return EventOutcome.Exit;
        }

        if (value < (uint)_queueCount)
        {
            // Not read (edge-triggered). A kick for a ring that is not ready is not lost:
            // starting or enabling the ring asks for processing.
            Vring? vring = _byQueue[(int)value];
            if (vring is null || !vring.IsReady)
            {
                if (vring is { IsBroken: true })
                {
                    vring.IgnoreKickWhileBroken();
                }

                return EventOutcome.None;
            }

            vring.CountKick();
            Dispatch((int)value, set);
            return EventOutcome.RingWork;
        }

        Dispatch((int)value, set);
        return EventOutcome.None;
    }

    /// <summary>A listener event delivered while the thread is parked (see <see cref="DeliverListenerEventsWhileParked"/>).</summary>
    internal void DeliverListenerEvent(uint value, VringEpollEvents set)
    {
        if (value > (uint)_queueCount)
        {
            Dispatch((int)value, set);
        }
    }

    /// <summary>Applies the completions other threads queued and calls the device for rings that asked for processing.</summary>
    internal void ServiceRequests()
    {
        foreach (Vring v in _vrings)
        {
            v.DrainCompletions();
            if (v.TakeProcessingRequest() && v.IsReady)
            {
                Dispatch(v.Index, VringEpollEvents.In);
            }
        }
    }

    /// <summary>After a pause: every ring gets one look.</summary>
    internal void RequestProcessingOfEveryRing()
    {
        foreach (Vring v in _vrings)
        {
            v.RequestProcessing();
        }
    }

    /// <summary>One polling round over this worker's ready rings (each gets one call); whether anything was popped.</summary>
    internal bool PollRound()
    {
        bool progress = false;
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

        return progress;
    }

    /// <summary>The polling window ended: notifications back on, and one more look at each ring.</summary>
    internal void EndPolling()
    {
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

    private ulong Encode(uint value) => ((ulong)(uint)Slot << 32) | value;

    private void TryRemove(SafeHandle fd)
    {
        try
        {
            _thread.Epoll.Remove(fd);
        }
        catch (VhostException e) when (e.Errno is Errno.ENOENT or Errno.EPERM or Errno.EBADF)
        {
            // Never registered (the add failed, or the fd is of a kind epoll refuses).
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Dispatch(int deviceEvent, VringEpollEvents events)
    {
        try
        {
            _backend.HandleEvent(deviceEvent, events, _vrings, Index);
        }
        catch (VirtqueueException e) when (deviceEvent < _queueCount && _byQueue[deviceEvent] is not null)
        {
            // The guest's ring (a descriptor loop, a buffer outside memory, ...) reached the worker
            // through the device: the ring is broken, logged and signalled once, not per event.
            _byQueue[deviceEvent]!.MarkBroken(e);
        }
        catch (Exception e)
        {
            Log.HandleEventFailed(Logger, deviceEvent, Index, e);
            if (deviceEvent < _queueCount && _byQueue[deviceEvent] is { } vring)
            {
                vring.SignalError();
            }
        }

        CheckGuestMemoryLost();

        // Completions the device made on this thread (Vring.Complete inside HandleEvent, also on
        // another worker's rings of a shared thread) and any that arrived from other threads
        // meanwhile: one publish and one notification per ring.
        foreach (Vring v in _vrings)
        {
            v.DrainCompletions();
        }

        _thread.PublishNoted();
    }

    /// <summary>A completion applied on this worker's thread (see <see cref="VringWorkerThread.NotePublish"/>).</summary>
    internal void NotePublish(Vring vring) => _thread.NotePublish(vring);
}
