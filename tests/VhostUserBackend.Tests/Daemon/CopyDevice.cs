using Vhost;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// The test device: copies each chain's device-readable bytes into its device-writable buffers
/// and returns the chain with the number of bytes written. Optional knobs: throw for one queue,
/// hold back chains (popped, never completed: a backend that dies mid-request), count threads.
/// </summary>
internal sealed class CopyDevice : IVhostUserBackend
{
    private readonly byte[][] _scratch;
    private readonly ulong _features;

    public CopyDevice(int queues = 1, ushort maxQueueSize = 256, IReadOnlyList<ulong>? groups = null, bool packed = true, int[][]? indexGroups = null)
    {
        QueueCount = queues;
        MaxQueueSize = maxQueueSize;
        _features = (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex)
            | (packed ? (ulong)VirtioFeatures.RingPacked : 0);
        QueuesPerWorker = indexGroups ?? (groups is null ? [Enumerable.Range(0, queues).ToArray()] : [.. groups.Select(QueuesOf)]);
        ThreadOfQueue = Enumerable.Repeat(-1, Math.Max(queues, 1)).ToArray();
        _scratch = new byte[QueuesPerWorker.Count][];
        for (int i = 0; i < _scratch.Length; i++)
        {
            _scratch[i] = new byte[65536];
        }
    }

    public int QueueCount { get; }

    public ushort MaxQueueSize { get; }

    public ulong Features => _features;

    public VhostUserProtocolFeatures ProtocolFeatures => BaseProtocolFeatures | ExtraProtocolFeatures;

    /// <summary>The protocol features offered before <see cref="ExtraProtocolFeatures"/>: the defaults and CONFIG (its config is served by hand, <see cref="GetConfig"/>).</summary>
    public VhostUserProtocolFeatures BaseProtocolFeatures { get; set; } = IVhostUserBackend.DefaultProtocolFeatures | VhostUserProtocolFeatures.Config;

    /// <summary>A config space the daemon serves instead of <see cref="GetConfig"/>, or null.</summary>
    public VhostUserBackend.Config.VirtioConfigSpace? ConfigSpace { get; set; }

    /// <summary>Offered on top of the defaults (DEVICE_STATE, INBAND_NOTIFICATIONS, ...).</summary>
    public VhostUserProtocolFeatures ExtraProtocolFeatures { get; set; }

    public IReadOnlyList<IReadOnlyList<int>> QueuesPerWorker { get; }

    /// <summary>The queues of one worker given as a bit mask (bit i = queue i).</summary>
    private static int[] QueuesOf(ulong mask) => [.. Enumerable.Range(0, 64).Where(q => (mask & (1UL << q)) != 0)];

    /// <summary>HandleEvent throws for this queue.</summary>
    public int ThrowOnQueue { get; set; } = -1;

    /// <summary>When non-negative: once this many chains are completed or pending (over the device's life), chains are popped and held, never completed.</summary>
    public long CompleteLimit { get; set; } = -1;

    public long Completed;

    /// <summary>Chains held back now (<see cref="CompleteLimit"/>).</summary>
    public long Held;

    /// <summary>
    /// When set, the held chains are kept (per queue, oldest first) and put back, newest first,
    /// when the daemon asks (<see cref="UnpopHeldChains"/>): a device whose buffers wait for data.
    /// </summary>
    public bool PutBackHeld { get; set; }

    /// <summary>A device bug: put the held chains back oldest first (refused by the ring).</summary>
    public bool PutBackOldestFirst { get; set; }

    /// <summary>The chains held back, per queue, oldest first (with <see cref="PutBackHeld"/>; lock the list).</summary>
    public List<DescriptorChain>[] HeldChains { get; } = [.. Enumerable.Range(0, 8).Select(_ => new List<DescriptorChain>())];

    /// <summary>Every head popped, per queue, in order, with <see cref="PutBackHeld"/> (lock the list).</summary>
    public List<ushort>[] PoppedHeads { get; } = [.. Enumerable.Range(0, 8).Select(_ => new List<ushort>())];

    /// <summary>UnpopHeldChains calls (queue index, held chains then).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(int Queue, int Held)> UnpopCalls { get; } = new();

    /// <summary>The control thread, worker paused: the held chains go back to the ring, newest first.</summary>
    public void UnpopHeldChains(Vring vring)
    {
        List<DescriptorChain> held = HeldChains[vring.Index];
        lock (held)
        {
            UnpopCalls.Enqueue((vring.Index, held.Count));
            if (!PutBackHeld)
            {
                return;
            }

            for (int n = 0; n < held.Count; n++)
            {
                vring.Unpop(held[PutBackOldestFirst ? n : held.Count - 1 - n]);
                Interlocked.Decrement(ref Held);
            }

            held.Clear();
        }

        if (SignalWorkerEventOnUnpop)
        {
            WorkerEvent?.Signal();
        }
    }

    /// <summary>Thread index → managed thread ids seen, per queue.</summary>
    public readonly int[] ThreadOfQueue;

    /// <summary>Per worker: GC.GetAllocatedBytesForCurrentThread at its latest HandleEvent.</summary>
    public readonly long[] WorkerAllocatedBytes = new long[64];

    public int ResetCount;

    public TimeSpan PollingTime { get; set; }

    public TimeSpan GetPollingTime(int workerIndex) => PollingTime;

    public System.Collections.Concurrent.ConcurrentBag<(int Event, VringEpollEvents Events, int Thread)> ListenerEvents { get; } = [];

    /// <summary>The managed thread ids ring events were handled on.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<int, byte> HandlerThreadIds { get; } = [];

    public byte[] Config { get; } = Enumerable.Range(0, 16).Select(i => (byte)(0xA0 + i)).ToArray();

    public int MemoryUpdates;

    public int StateChanges;

    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        if (deviceEvent >= QueueCount)
        {
            ListenerEvents.Add((deviceEvent, events, workerIndex));
            if (CompleteOnWorkerEvent && deviceEvent == QueueCount + 7)
            {
                if (ProcessRingsOnWorkerEvent)
                {
                    foreach (Vring v in vrings)
                    {
                        if (v.IsStarted)
                        {
                            Process(v, _scratch[workerIndex]);
                        }
                    }
                }

                CompleteHeldOnWorker();
            }

            return;
        }

        HandlerThreadIds[Environment.CurrentManagedThreadId] = 0;

        // What the worker thread has allocated so far (the epoll loop, kick handling and this device).
        Volatile.Write(ref WorkerAllocatedBytes[workerIndex], GC.GetAllocatedBytesForCurrentThread());
        if (deviceEvent == ThrowOnQueue)
        {
            throw new InvalidOperationException($"device failure on queue {deviceEvent}");
        }

        foreach (Vring v in vrings)
        {
            if (v.Index == deviceEvent)
            {
                ThreadOfQueue[v.Index] = workerIndex;
                Process(v, _scratch[workerIndex]);
            }
        }
    }

    public void GetConfig(uint offset, Span<byte> data)
    {
        if (offset + (uint)data.Length > Config.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), "outside config space");
        }

        Config.AsSpan((int)offset, data.Length).CopyTo(data);
    }

    public void UpdateMemory(VhostUserBackend.Memory.GuestMemoryAtomic memory)
    {
        Memory = memory;
        Interlocked.Increment(ref MemoryUpdates);
    }

    /// <summary>The memory the daemon last handed over.</summary>
    public VhostUserBackend.Memory.GuestMemoryAtomic? Memory { get; private set; }

    public void OnVringStateChanged(Vring vring) => Interlocked.Increment(ref StateChanges);

    public void Reset() => Interlocked.Increment(ref ResetCount);

    /// <summary>Every driver status the daemon reported, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<Vhost.Vdpa.VirtioDeviceStatus> Statuses { get; } = new();

    public void OnDriverStatusChanged(Vhost.Vdpa.VirtioDeviceStatus status) => Statuses.Enqueue(status);

    /// <summary>When set, every worker gets an exit eventfd (kept here for the test to signal; the daemon owns it).</summary>
    public bool WithExitEvents { get; set; }

    public System.Collections.Concurrent.ConcurrentDictionary<int, EventFd> ExitEvents { get; } = [];

    public EventFd? CreateExitEvent(int workerIndex)
    {
        if (!WithExitEvents)
        {
            return null;
        }

        var exit = new EventFd(EventFdFlags.NonBlocking);
        ExitEvents[workerIndex] = exit;
        return exit;
    }

    /// <summary>When set, the device has a migratable state: the magic <c>CPYD</c> and <see cref="Config"/>.</summary>
    public bool WithState { get; set; }

    public VhostUserBackend.Migration.IVhostUserDeviceState? DeviceState => WithState ? new CopyState(Config) : null;

    /// <summary>The state: the magic and the config bytes, rejected unless exactly that long.</summary>
    private sealed class CopyState(byte[] config) : VhostUserBackend.Migration.IVhostUserDeviceState
    {
        private static ReadOnlySpan<byte> StateMagic => "CPYD"u8;

        public int MaxStateSize => StateMagic.Length + config.Length;

        public void SaveState(Stream destination)
        {
            destination.Write(StateMagic);
            destination.Write(config);
        }

        public void LoadState(Stream source)
        {
            byte[] loaded = new byte[MaxStateSize];
            int n = source.ReadAtLeast(loaded, loaded.Length, throwOnEndOfStream: false);
            if (n != loaded.Length || source.ReadByte() >= 0 || !loaded.AsSpan(0, StateMagic.Length).SequenceEqual(StateMagic))
            {
                throw new InvalidDataException($"device state is not this device's");
            }

            loaded.AsSpan(StateMagic.Length).CopyTo(config);
        }
    }

    /// <summary>The back-end channel the daemon handed over (SET_BACKEND_REQ_FD).</summary>
    public volatile Vhost.User.VhostUserBackendChannel? Channel;

    public void SetBackendChannel(Vhost.User.VhostUserBackendChannel channel) => Channel = channel;

    /// <summary>The shared memory regions GET_SHMEM_CONFIG reports (offer SHMEM too), or null for none.</summary>
    public VhostUserShmemConfig? Shmem { get; set; }

    public VhostUserShmemConfig GetShmemConfig() => Shmem ?? throw new NotSupportedException("no shared memory regions");

    /// <summary>
    /// Asynchronous mode: the worker only collects each chain's buffers; a thread-pool thread
    /// copies the data (writing guest memory without logging it) and completes the chain with
    /// <see cref="Vring.Complete"/>, after a random short delay, so completions come from many
    /// threads in any order.
    /// </summary>
    public bool Async { get; set; }

    /// <summary>Asynchronous mode: completions wait until this is set.</summary>
    public ManualResetEventSlim CompletionGate { get; } = new(initialState: true);

    /// <summary>
    /// In-flight migration: whether <see cref="SuspendInFlight"/> suspends; false: it refuses (the daemon drains).
    /// Otherwise the asynchronous "host I/O" of every pending chain is cancelled: it neither writes
    /// guest memory nor completes, and <see cref="SuspendInFlight"/> returns once none is running.
    /// </summary>
    public bool CanSuspend { get; set; }

    /// <summary>SuspendInFlight calls (queue index, pending chains then).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(int Queue, int Pending)> SuspendCalls { get; } = new();

    /// <summary>Chains whose host I/O was cancelled by a suspension.</summary>
    public int Cancelled;

    /// <summary>After a suspension, complete one cancelled chain anyway (a device bug the daemon must absorb).</summary>
    public bool CompleteOneCancelledAnyway { get; set; }

    private volatile bool _suspended;

    private int _lateCompletions;

    public bool SuspendInFlight(Vring vring)
    {
        SuspendCalls.Enqueue((vring.Index, Volatile.Read(ref Pending)));
        if (!CanSuspend)
        {
            return false;
        }

        // Cancel: the pending operations see the flag when they run and do nothing; wait until none runs.
        _suspended = true;
        CompletionGate.Set();
        long deadline = Environment.TickCount64 + 5000;
        while (Volatile.Read(ref Pending) != 0 && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(1);
        }

        return Volatile.Read(ref Pending) == 0;
    }

    /// <summary>Lets the device run requests again after a suspension (the source resumes).</summary>
    public void Resume() => _suspended = false;

    private bool TryCancel(Vring v, DescriptorChain chain)
    {
        if (!_suspended)
        {
            return false;
        }

        Interlocked.Increment(ref Cancelled);
        if (CompleteOneCancelledAnyway && Interlocked.Increment(ref _lateCompletions) == 1)
        {
            // Let the stop finish first, so this completion is a late one.
            Interlocked.Decrement(ref Pending);
            Thread.Sleep(200);
            v.Complete(chain, 1);
            return true;
        }

        Interlocked.Decrement(ref Pending);
        return true;
    }

    /// <summary>Asynchronous mode: chains handed to the pool and not completed yet.</summary>
    public int Pending;

    /// <summary>
    /// When set, chains are held on the worker and completed there when <see cref="WorkerEvent"/>
    /// is signalled (a listener on worker 0): the shape of a device that reaps its I/O completions
    /// (an io_uring eventfd) on its worker.
    /// </summary>
    public bool CompleteOnWorkerEvent { get; set; }

    /// <summary>With <see cref="CompleteOnWorkerEvent"/>: the worker event also processes every started ring first (a device fed by a socket, taking buffers when data comes).</summary>
    public bool ProcessRingsOnWorkerEvent { get; set; }

    /// <summary>With <see cref="PutBackHeld"/>: signal <see cref="WorkerEvent"/> right after putting the held chains back.</summary>
    public bool SignalWorkerEventOnUnpop { get; set; }

    /// <summary>The listener eventfd of <see cref="CompleteOnWorkerEvent"/> (signal it to complete the held chains).</summary>
    public EventFd? WorkerEvent { get; private set; }

    /// <summary>Threads on which the held chains were completed.</summary>
    public System.Collections.Concurrent.ConcurrentBag<int> WorkerEventThreads { get; } = [];

    private readonly List<(Vring Ring, DescriptorChain Chain)> _heldForEvent = [];

    public void OnWorkersStarted(IReadOnlyList<VhostUserWorker> workers)
    {
        if (CompleteOnWorkerEvent)
        {
            WorkerEvent = new EventFd(EventFdFlags.NonBlocking);
            workers[0].RegisterListener(WorkerEvent, VringEpollEvents.In, (ulong)QueueCount + 7);
        }
    }

    private void CompleteHeldOnWorker()
    {
        WorkerEvent!.TryRead(out _);
        WorkerEventThreads.Add(Environment.CurrentManagedThreadId);
        foreach ((Vring v, DescriptorChain chain) in _heldForEvent)
        {
            v.Complete(chain, Copy(chain, new byte[65536]));
            Interlocked.Increment(ref Completed);
            Interlocked.Decrement(ref Pending);
        }

        _heldForEvent.Clear();
    }

    private void ProcessAsync(Vring v, DescriptorChain chain)
    {
        // Buffers are collected on the worker (the chain's descriptors are read once, here);
        // the copy and the completion run elsewhere, against the chain's memory snapshot.
        var buffers = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            buffers.Add(b);
        }

        Interlocked.Increment(ref Pending);
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            CompletionGate.Wait();
            Thread.SpinWait(Random.Shared.Next(2000));
            if (TryCancel(v, chain))
            {
                return;
            }

            VhostUserBackend.Memory.GuestMemory memory = chain.Memory!;
            var data = new List<byte>();
            uint written = 0;
            foreach (VirtqBuffer b in buffers)
            {
                if (!b.IsWriteOnly)
                {
                    var part = new byte[b.Length];
                    memory.Read(b.Address, part);
                    data.AddRange(part);
                }
                else
                {
                    int n = (int)Math.Min(b.Length, (uint)(data.Count - (int)written));
                    data.GetRange((int)written, n).ToArray().CopyTo(memory.GetSpan(b.Address, n));
                    written += (uint)n;
                }
            }

            Interlocked.Increment(ref Completed);
            Interlocked.Decrement(ref Pending);
            v.Complete(chain, written);
        }, null);
    }

    /// <summary>
    /// When set, queue 0 is a device-to-driver queue (an event queue): the device writes these
    /// events, produced on other threads, into the buffers the driver keeps posted, in order.
    /// </summary>
    public System.Collections.Concurrent.ConcurrentQueue<byte[]>? Events { get; set; }

    /// <summary>Event queue: how many times the device's loop ran (it must not spin on a full queue with nothing to say).</summary>
    public long EventLoopIterations;

    /// <summary>
    /// The loop for a device-to-driver queue (docs/writing-a-backend.md): the device's data is the
    /// limit, the driver's buffers the budget. Kicks stay enabled (a kick means "new buffers"),
    /// and a producer calls <see cref="Vring.RequestProcessing"/> after queuing an event.
    /// </summary>
    private void ProduceEvents(Vring v)
    {
        bool used = false;
        while (Events!.TryPeek(out byte[]? e))
        {
            Interlocked.Increment(ref EventLoopIterations);
            if (!v.TryPopDescriptorChain(out DescriptorChain chain))
            {
                if (v.EnableNotification())
                {
                    continue; // buffers arrived between the pop and the re-enable
                }

                break; // the driver kicks when it posts buffers
            }

            uint written = 0;
            foreach (VirtqBuffer b in chain)
            {
                if (b.IsWriteOnly && written == 0 && b.Length >= e.Length)
                {
                    chain.Memory!.Write(b.Address, e);
                    chain.Memory.MarkDirty(b.Address, (ulong)e.Length);
                    written = (uint)e.Length;
                }
            }

            v.AddUsed(chain.Head, written);
            Events.TryDequeue(out _);
            used = true;
        }

        if (used)
        {
            v.SignalUsedQueue();
        }
    }

    private void Process(Vring v, byte[] scratch)
    {
        if (Events is not null && v.Index == 0)
        {
            ProduceEvents(v);
            return;
        }

        bool used = false;
        while (true)
        {
            v.DisableNotification();
            while (v.TryPopDescriptorChain(out DescriptorChain chain))
            {
                if (PutBackHeld)
                {
                    lock (PoppedHeads[v.Index])
                    {
                        PoppedHeads[v.Index].Add(chain.Head);
                    }
                }

                if (CompleteLimit >= 0 && Interlocked.Read(ref Completed) + Volatile.Read(ref Pending) >= CompleteLimit)
                {
                    if (PutBackHeld)
                    {
                        lock (HeldChains[v.Index])
                        {
                            HeldChains[v.Index].Add(chain);
                        }
                    }

                    Interlocked.Increment(ref Held);
                    continue;
                }

                if (Async)
                {
                    ProcessAsync(v, chain);
                    continue;
                }

                if (CompleteOnWorkerEvent)
                {
                    _heldForEvent.Add((v, chain));
                    Interlocked.Increment(ref Pending);
                    continue;
                }

                uint written = Copy(chain, scratch);
                v.AddUsed(chain.Head, written);
                Interlocked.Increment(ref Completed);
                used = true;
            }

            if (used)
            {
                v.SignalUsedQueue();
                used = false;
            }

            if (!v.EnableNotification())
            {
                return;
            }
        }
    }

    private static uint Copy(DescriptorChain chain, byte[] scratch)
    {
        VhostUserBackend.Memory.GuestMemory memory = chain.Memory!;
        int read = 0;
        uint written = 0;
        foreach (VirtqBuffer b in chain)
        {
            if (!b.IsWriteOnly)
            {
                int n = (int)Math.Min(b.Length, (uint)(scratch.Length - read));
                memory.Read(b.Address, scratch.AsSpan(read, n));
                read += n;
            }
            else
            {
                int n = (int)Math.Min(b.Length, (uint)(read - (int)written));
                memory.Write(b.Address, scratch.AsSpan((int)written, n));
                written += (uint)n;
            }
        }

        return written;
    }
}
