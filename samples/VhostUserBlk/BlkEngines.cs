using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostUserBackend;
using VhostUserBackend.IO;

namespace VhostUserBlk;

/// <summary>
/// Runs requests' I/O operations asynchronously and reports each result (bytes, 0, or a negated
/// errno) to the completion callback. One engine per daemon worker, so every queue's requests are
/// independent of the other workers'.
/// </summary>
internal interface IBlkEngine : IDisposable
{
    /// <summary>
    /// The eventfd to watch on the worker (<see cref="VhostUserWorker.RegisterListener"/>) when
    /// the engine reaps its completions there (<see cref="Reap"/>); null when it completes on
    /// threads of its own.
    /// </summary>
    EventFd? CompletionEvent { get; }

    /// <summary>Queues <paramref name="request"/>'s current operation (the worker, or a completion callback).</summary>
    void Start(BlkRequest request);

    /// <summary>Hands queued operations to the kernel (after a batch).</summary>
    void Kick();

    /// <summary>Reports the operations that finished, without waiting (<see cref="CompletionEvent"/> fired, or after a batch).</summary>
    void Reap();
}

/// <summary>
/// io_uring, completed on the daemon worker: the worker prepares operations and submits once per
/// batch, and reaps the completions when the ring's eventfd (a listener on the worker) fires, and
/// right after each submission (operations the kernel finished inline, such as page-cache reads,
/// complete without a wake-up). Completing on the worker costs no thread hop: the used element is
/// written and the driver notified on the same wake-up that reaped it. Reads and writes of an image
/// in memory (tmpfs, memfd) run inline instead: shmem has no non-blocking path, so io_uring would
/// hand each one to a kernel worker thread and wake this one for its completion (measured with a
/// 1 MiB tmpfs read at QD4: 104 against 88 µs of CPU per request).
/// </summary>
/// <remarks>
/// Reaping runs on the worker that owns the engine, or on the daemon's control thread while that
/// worker is parked (when the daemon stops a ring, it waits for the ring's requests in flight and
/// delivers the worker's listener events itself). Submission takes an uncontended lock, because
/// <see cref="LatencyEngine"/> submits from its timer thread. Operations that do not fit the
/// submission ring wait in a backlog and are prepared once completions free room.
/// </remarks>
internal sealed unsafe class UringEngine : IBlkEngine
{
    private readonly IoUring _ring;
    private readonly EventFd _completions;
    private readonly Func<int, BlkRequest> _lookup;
    private readonly Action<BlkRequest, int> _onComplete;
    private readonly Queue<BlkRequest> _backlog = new(VirtioBlkDevice.QueueSizeLimit);
    private readonly Lock _submitLock = new();

    /// <summary>Inline transfers of at least this many bytes are signalled to the driver as soon as they complete.</summary>
    private const long EarlySignalBytes = 64 * 1024;

    private readonly SafeFileHandle _buffered;
    private readonly SafeFileHandle? _direct;
    private readonly bool _inlineBuffered;

    public UringEngine(IoUring ring, SafeFileHandle buffered, SafeFileHandle? direct, Func<int, BlkRequest> lookup, Action<BlkRequest, int> onComplete, bool inlineBuffered)
    {
        _ring = ring;
        _buffered = buffered;
        _direct = direct;
        _inlineBuffered = inlineBuffered;
        _lookup = lookup;
        _onComplete = onComplete;
        _completions = new EventFd(EventFdFlags.NonBlocking);
        try
        {
            _ring.RegisterFiles([buffered, direct]);
            _ring.RegisterEventFd(_completions);
        }
        catch
        {
            _completions.Dispose();
            throw;
        }
    }

    public EventFd? CompletionEvent => _completions;

    public void Start(BlkRequest request)
    {
        if (_inlineBuffered && request.File == 0 && request.Operation is BlkOperation.Readv or BlkOperation.Writev)
        {
            Vring? vring = request.Vring;
            long bytes = request.Remaining;
            _onComplete(request, BlkSyscall.Execute(request, _buffered, _direct));

            // A long copy finished on the worker: tell the driver now, not after the rest of the
            // batch, so it reuses the buffer and queues the next request while this thread copies
            // the following one (at QD4 with 1 MiB, publishing at the end of the batch left the
            // driver idle for three more copies). A signal costs about 1 us: nothing beside a
            // 64 KiB copy, too much beside a 4 KiB one.
            if (bytes >= EarlySignalBytes && vring is not null && vring.IsServedByCurrentThread)
            {
                vring.SignalUsedQueue();
            }

            return;
        }

        lock (_submitLock)
        {
            if (_backlog.Count != 0 || !Prepare(request))
            {
                _backlog.Enqueue(request);
            }
        }
    }

    public void Kick()
    {
        lock (_submitLock)
        {
            SubmitAll();
        }
    }

    private void SubmitAll()
    {
        while (true)
        {
            while (_backlog.TryPeek(out BlkRequest? r) && Prepare(r))
            {
                _backlog.Dequeue();
            }

            // Zero taken: the kernel is busy (completions overflowed): the operations stay
            // prepared and go with the next submission, after the next reap.
            if (_ring.PendingSubmissions == 0 || _ring.Submit() == 0 || _backlog.Count == 0)
            {
                return;
            }
        }
    }

    public void Reap()
    {
        // The eventfd is watched edge-triggered (every signal is an edge), so it is never read:
        // one system call less per wake-up.
        while (_ring.TryGetCompletion(out IoUringCompletion c))
        {
            _onComplete(_lookup((int)c.UserData), c.Result);
        }

        // Follow-up operations the callbacks started (short transfers, write-through flushes)
        // and the backlog.
        Kick();
    }

    public void Dispose()
    {
        _ring.Dispose();
        _completions.Dispose();
    }

    private bool Prepare(BlkRequest r) => r.Operation switch
    {
        BlkOperation.Readv => _ring.TryPrepareReadv(r.File, r.Iovecs, r.IovecCount, r.Offset, (ulong)r.Id),
        BlkOperation.Writev => _ring.TryPrepareWritev(r.File, r.Iovecs, r.IovecCount, r.Offset, (ulong)r.Id),
        BlkOperation.Fdatasync => _ring.TryPrepareFsync(r.File, dataOnly: true, (ulong)r.Id),
        _ => _ring.TryPrepareFallocate(r.File, r.Mode, r.Offset, r.Remaining, (ulong)r.Id),
    };
}

/// <summary>
/// The fallback where io_uring is unavailable (an old kernel, <c>kernel.io_uring_disabled</c>,
/// seccomp in a container): a few I/O threads per worker each run one synchronous
/// <c>preadv</c>/<c>pwritev</c>/<c>fdatasync</c>/<c>fallocate</c> at a time, so many requests are
/// still in flight. The queue is a preallocated ring; nothing is allocated per request.
/// </summary>
internal sealed unsafe class ThreadEngine : IBlkEngine
{
    private readonly SafeFileHandle _buffered;
    private readonly SafeFileHandle? _direct;
    private readonly Action<BlkRequest, int> _onComplete;
    private readonly object _gate = new();
    private readonly Thread[] _threads;
    private BlkRequest?[] _queue = new BlkRequest?[256];
    private int _head;
    private int _count;
    private bool _stopping;

    public ThreadEngine(SafeFileHandle buffered, SafeFileHandle? direct, Action<BlkRequest, int> onComplete, int worker, int threads)
    {
        _buffered = buffered;
        _direct = direct;
        _onComplete = onComplete;
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Run) { IsBackground = true, Name = $"blk-io-{worker}.{i}" };
            _threads[i].Start();
        }
    }

    public void Start(BlkRequest request)
    {
        lock (_gate)
        {
            if (_count == _queue.Length)
            {
                // Grows while warming up only: in flight is bounded by the rings' sizes.
                var bigger = new BlkRequest?[_queue.Length * 2];
                for (int i = 0; i < _count; i++)
                {
                    bigger[i] = _queue[(_head + i) % _queue.Length];
                }

                _queue = bigger;
                _head = 0;
            }

            _queue[(_head + _count) % _queue.Length] = request;
            _count++;
            Monitor.Pulse(_gate);
        }
    }

    public EventFd? CompletionEvent => null;

    public void Kick()
    {
    }

    public void Reap()
    {
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        foreach (Thread t in _threads)
        {
            t.Join();
        }
    }

    private void Run()
    {
        while (true)
        {
            BlkRequest r;
            lock (_gate)
            {
                while (_count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_count == 0)
                {
                    return;
                }

                r = _queue[_head]!;
                _queue[_head] = null;
                _head = (_head + 1) % _queue.Length;
                _count--;
            }

            _onComplete(r, Execute(r));
        }
    }

    private int Execute(BlkRequest r) => BlkSyscall.Execute(r, _buffered, _direct);
}

/// <summary>
/// A slow disk on top of another engine (<c>--latency</c>, for tests and demonstrations): every
/// operation waits a random 0 to <c>max</c> before it is handed to the inner engine, and its
/// result waits another random 0 to <c>max</c> before the completion callback sees it, so
/// requests stay in flight for a while and complete in a different order than they came. The
/// waits run on one timer thread per engine; nothing is allocated per operation once the queue
/// has grown to the number of operations in flight.
/// </summary>
internal sealed class LatencyEngine : IBlkEngine
{
    private readonly IBlkEngine _inner;
    private readonly Action<BlkRequest, int> _onComplete;
    private readonly long _maxTicks;
    private readonly object _gate = new();
    private readonly PriorityQueue<Entry, long> _due = new();
    private readonly Random _random;
    private readonly Thread _thread;
    private bool _stopping;

    /// <summary>Creates the engine and the inner one, whose completions it delays.</summary>
    /// <param name="max">The longest wait on either side of an operation.</param>
    /// <param name="onComplete">The completion callback (called on the timer thread).</param>
    /// <param name="worker">The daemon worker, for the thread's name.</param>
    /// <param name="createInner">Creates the inner engine from the completion callback it must call.</param>
    public LatencyEngine(TimeSpan max, Action<BlkRequest, int> onComplete, int worker, Func<Action<BlkRequest, int>, IBlkEngine> createInner)
    {
        _maxTicks = Math.Max(1, (long)(max.TotalSeconds * System.Diagnostics.Stopwatch.Frequency));
        _onComplete = onComplete;
        _random = new Random(Environment.ProcessId ^ worker);
        _inner = createInner(Completed);
        _thread = new Thread(Run) { IsBackground = true, Name = $"blk-latency-{worker}" };
        _thread.Start();
    }

    public EventFd? CompletionEvent => _inner.CompletionEvent;

    public void Start(BlkRequest request) => Schedule(new Entry(request, 0, start: true));

    public void Kick()
    {
        // Operations reach the inner engine from the timer thread, which submits them itself.
    }

    public void Reap() => _inner.Reap();

    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        _thread.Join();
        _inner.Dispose();
    }

    private void Completed(BlkRequest request, int result) => Schedule(new Entry(request, result, start: false));

    private void Schedule(Entry entry)
    {
        lock (_gate)
        {
            long due = System.Diagnostics.Stopwatch.GetTimestamp() + _random.NextInt64(_maxTicks + 1);
            _due.Enqueue(entry, due);
            Monitor.Pulse(_gate);
        }
    }

    private void Run()
    {
        while (true)
        {
            Entry entry;
            lock (_gate)
            {
                while (true)
                {
                    if (_stopping)
                    {
                        return;
                    }

                    if (_due.TryPeek(out _, out long due))
                    {
                        long wait = due - System.Diagnostics.Stopwatch.GetTimestamp();
                        if (wait <= 0)
                        {
                            entry = _due.Dequeue();
                            break;
                        }

                        Monitor.Wait(_gate, TimeSpan.FromSeconds((double)wait / System.Diagnostics.Stopwatch.Frequency));
                    }
                    else
                    {
                        Monitor.Wait(_gate);
                    }
                }
            }

            if (entry.IsStart)
            {
                _inner.Start(entry.Request);
                _inner.Kick();
            }
            else
            {
                _onComplete(entry.Request, entry.Result);
            }
        }
    }

    private readonly struct Entry(BlkRequest request, int result, bool start)
    {
        public BlkRequest Request { get; } = request;

        public int Result { get; } = result;

        public bool IsStart { get; } = start;
    }
}

/// <summary>One request's operation as a synchronous system call (the thread engine, and tmpfs images inline).</summary>
internal static unsafe class BlkSyscall
{
    /// <summary>Runs <paramref name="r"/>'s operation; the result as io_uring reports it (bytes, 0, or a negated errno).</summary>
    public static int Execute(BlkRequest r, SafeFileHandle buffered, SafeFileHandle? direct)
    {
        SafeFileHandle handle = r.File == 1 && direct is not null ? direct : buffered;
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            while (true)
            {
                long n = r.Operation switch
                {
                    BlkOperation.Readv => Native.preadv(fd, r.Iovecs, r.IovecCount, r.Offset),
                    BlkOperation.Writev => Native.pwritev(fd, r.Iovecs, r.IovecCount, r.Offset),
                    BlkOperation.Fdatasync => Native.fdatasync(fd),
                    _ => Native.fallocate(fd, (int)r.Mode, r.Offset, r.Remaining),
                };
                if (n >= 0)
                {
                    return (int)Math.Min(n, int.MaxValue);
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                {
                    return -errno;
                }
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }
}
