using Microsoft.Extensions.Logging;
using Vhost;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Config;
using VhostUserBackend.Devices.Input;
using VhostUserBackend.Virtio;

namespace VhostUserInput;

/// <summary>
/// A virtio-input device (VIRTIO 1.3 §5.8) fed by an <see cref="IInputSource"/>: queue 0, the
/// event queue, carries the source's events to the driver, one 8-byte
/// <see cref="VirtioInputEvent"/> per buffer; queue 1, the status queue, carries the driver's
/// events (LEDs) to the source. The config space is a <see cref="VirtioInputConfigSpace"/> built from the source's description.
/// </summary>
/// <remarks>
/// <para>One worker serves both queues and the source's ready fd (edge-triggered). Events wait in a
/// fixed 256-event queue of the device until the driver has posted buffers for them; the driver's
/// buffers wait in the ring, never in the device: a chain is popped only when an event is there to
/// write into it, and completed at once. So the device never holds a chain and needs no
/// <see cref="IVhostUserBackend.UnpopHeldChains"/>: at a ring stop or a memory change nothing of
/// the driver's is in the device's hands, and the pending events simply wait for the next
/// buffers. When the device queue is full the source is not read; its own buffer (the keyboard's
/// queue, the kernel's evdev buffer) keeps the rest until buffers come (a kick refills).</para>
/// <para>Nothing on the worker allocates or blocks.</para>
/// </remarks>
internal sealed class VirtioInputDevice : IVhostUserBackend
{
    /// <summary>The event queue's index.</summary>
    public const int EventQueue = 0;

    /// <summary>The status queue's index.</summary>
    public const int StatusQueue = 1;

    /// <summary>The device event of the source's ready fd (above the reserved ring values).</summary>
    public const int SourceEvent = 16;

    private const int PendingCapacity = 256;

    private readonly IInputSource _source;
    private readonly VirtioInputConfigSpace _config;
    private readonly ILogger _logger;
    private readonly VirtioInputEvent[] _pending = new VirtioInputEvent[PendingCapacity];
    private int _pendingHead;
    private int _pendingCount;
    private bool _sourceGone;
    private long _delivered;
    private long _statusEvents;

    public VirtioInputDevice(IInputSource source, ILogger logger)
    {
        _source = source;
        _config = source.Config.ToConfigSpace();
        _logger = logger;
    }

    /// <inheritdoc/>
    public int QueueCount => 2;

    /// <inheritdoc/>
    public ushort MaxQueueSize => 1024;

    /// <inheritdoc/>
    public ulong Features => (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex | VirtioFeatures.RingIndirectDescriptors | VirtioFeatures.RingPacked);

    /// <inheritdoc/>
    public VirtioConfigSpace? ConfigSpace => _config.Space;

    /// <summary>Events written into the driver's buffers so far.</summary>
    public long EventsDelivered => Interlocked.Read(ref _delivered);

    /// <summary>Events the driver sent on the status queue so far.</summary>
    public long StatusEvents => Interlocked.Read(ref _statusEvents);

    /// <inheritdoc/>
    public void OnWorkersStarted(IReadOnlyList<VhostUserWorker> workers) =>
        workers[0].RegisterListener(_source.ReadyHandle, VringEpollEvents.In | VringEpollEvents.EdgeTriggered, SourceEvent);

    /// <inheritdoc/>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        switch (deviceEvent)
        {
            case EventQueue:
            case SourceEvent:
                Deliver(vrings[EventQueue]);
                break;
            case StatusQueue:
                TakeStatus(vrings[StatusQueue]);
                break;
        }
    }

    /// <summary>Moves pending (and newly read) events into the driver's event buffers while both last.</summary>
    private void Deliver(Vring eventq)
    {
        if (!eventq.IsReady)
        {
            // The source's events wait (in its own buffer) until the driver starts the ring: the
            // ring's start calls us again.
            return;
        }

        bool used = false;
        while (true)
        {
            if (_pendingCount == 0 && !Refill())
            {
                break;
            }

            if (!eventq.TryPopDescriptorChain(out DescriptorChain chain))
            {
                // No buffer: ask for a kick, unless buffers arrived meanwhile.
                if (eventq.EnableNotification())
                {
                    continue;
                }

                break;
            }

            uint written = 0;
            try
            {
                DescriptorChainWriter writer = chain.CreateWriter();
                writer.Write(in _pending[_pendingHead]);
                written = VirtioInputEvent.Size;
            }
            catch (VirtqueueException e)
            {
                // A buffer too small for an event: the driver gets it back empty, the event waits for the next.
                _logger.LogWarning("event buffer {Head}: {Reason}", chain.Head, e.Message);
            }

            eventq.AddUsedDeferred(chain.Head, written);
            used = true;
            if (written != 0)
            {
                _pendingHead = (_pendingHead + 1) % PendingCapacity;
                _pendingCount--;
                _delivered++;
            }
        }

        if (used)
        {
            eventq.SignalUsedQueue();
        }
    }

    /// <summary>Reads what the source has into the free part of the pending queue; false when nothing came.</summary>
    private bool Refill()
    {
        if (_sourceGone)
        {
            return false;
        }

        int tail = (_pendingHead + _pendingCount) % PendingCapacity;
        int room = Math.Min(PendingCapacity - _pendingCount, PendingCapacity - tail);
        try
        {
            int n = _source.ReadEvents(_pending.AsSpan(tail, room));
            _pendingCount += n;
            return n > 0;
        }
        catch (IOException e)
        {
            _sourceGone = true;
            _logger.LogError("input source gone, no more events: {Reason}", e.Message);
            return false;
        }
    }

    /// <summary>Hands the driver's status events to the source and returns their buffers.</summary>
    private void TakeStatus(Vring statusq)
    {
        if (!statusq.IsReady)
        {
            return;
        }

        bool used = false;
        do
        {
            statusq.DisableNotification();
            while (statusq.TryPopDescriptorChain(out DescriptorChain chain))
            {
                try
                {
                    DescriptorChainReader reader = chain.CreateReader();
                    if (reader.Remaining < VirtioInputEvent.Size)
                    {
                        _logger.LogWarning("status buffer {Head}: {Bytes} bytes, less than one event", chain.Head, reader.Remaining);
                    }

                    while (reader.Remaining >= VirtioInputEvent.Size)
                    {
                        VirtioInputEvent status = reader.Read<VirtioInputEvent>();
                        _statusEvents++;
                        _source.WriteStatus(status);
                    }
                }
                catch (VirtqueueException e)
                {
                    _logger.LogWarning("status buffer {Head}: {Reason}", chain.Head, e.Message);
                }

                statusq.AddUsedDeferred(chain.Head, 0);
                used = true;
            }
        }
        while (statusq.EnableNotification());

        if (used)
        {
            statusq.SignalUsedQueue();
        }
    }
}
