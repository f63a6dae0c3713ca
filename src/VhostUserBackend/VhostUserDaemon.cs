using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;

namespace VhostUserBackend;

/// <summary>
/// Serves an <see cref="IVhostUserBackend"/> to vhost-user front-ends (QEMU, cloud-hypervisor,
/// <see cref="VhostUserFrontend"/>): a control thread reads the socket and applies each message,
/// and one worker thread per queue group (<see cref="IVhostUserBackend.QueuesPerWorker"/>) waits
/// on the kick eventfds and calls <see cref="IVhostUserBackend.HandleEvent"/>.
/// </summary>
/// <remarks>
/// <para>One front-end at a time. When it disconnects, the rings stop, guest memory is unmapped
/// (once no worker uses it), every fd it sent is closed, the device is
/// <see cref="IVhostUserBackend.Reset"/>, and the daemon serves the next front-end: accepted on the
/// same listener (server mode, QEMU's <c>reconnect=</c>), or connected to again (client mode,
/// <see cref="Connect"/>, QEMU's <c>server=on</c>). Started on an already connected socket, the
/// daemon ends when that front-end goes away.</para>
/// <para>Typical use from <c>Main</c>: <c>new VhostUserDaemon(device).Run(path)</c>; from a host:
/// <see cref="Start(string)"/> (synchronous: the socket listens when it returns),
/// <see cref="WaitAsync"/>, <see cref="StopAsync"/>. Dispose is
/// idempotent and works while a front-end is connected.</para>
/// </remarks>
public sealed partial class VhostUserDaemon : IDisposable
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> with the per-queue counters (kicks, calls, descriptors, bytes; tag <c>queue</c>).</summary>
    public const string MeterName = "VhostUserBackend";

    private readonly IVhostUserBackend _backend;
    private readonly VhostUserDaemonOptions _options;
    private readonly ILogger _logger;
    private readonly ILogger _protocolLogger;
    private readonly Vring[] _vrings;
    private readonly VhostUserWorker[] _workers;
    private readonly VhostUserWorker[] _workerOfQueue;
    private readonly VhostUserBackendMetrics _metrics;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _workersStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();
    private Thread? _control;
    private FrontendSource? _source;
    private volatile VhostUserConnection? _current;
    private long _connections;
    private bool _started;
    private bool _disposed;
    private bool _stopped;
    private int _workersStopping;

    /// <summary>Creates a daemon for <paramref name="backend"/> (nothing runs until a Start method).</summary>
    /// <param name="backend">The device.</param>
    /// <param name="loggerFactory">Optional logging; nothing is logged without it.</param>
    /// <exception cref="ArgumentException">The device's queue count, maximum queue size or queue groups are invalid.</exception>
    public VhostUserDaemon(IVhostUserBackend backend, ILoggerFactory? loggerFactory = null)
        : this(backend, new VhostUserDaemonOptions(), loggerFactory)
    {
    }

    /// <summary>Creates a daemon for <paramref name="backend"/> with security and policy <paramref name="options"/> (nothing runs until a Start method).</summary>
    /// <param name="backend">The device.</param>
    /// <param name="options">The memory-file policy and the allowed peers.</param>
    /// <param name="loggerFactory">Optional logging; nothing is logged without it.</param>
    /// <exception cref="ArgumentException">The device's queue count, maximum queue size or queue groups are invalid, or the reconnect delays are.</exception>
    public VhostUserDaemon(IVhostUserBackend backend, VhostUserDaemonOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Snapshot();
        _options.Validate();
        int queues = backend.QueueCount;
        if (queues <= 0 || queues > Vhost.User.Messages.VhostUserLimits.MaxQueues)
        {
            throw new ArgumentException($"the device must have 1 to {Vhost.User.Messages.VhostUserLimits.MaxQueues} queues, not {queues}", nameof(backend));
        }

        ushort maxSize = backend.MaxQueueSize;
        if (maxSize == 0 || !ushort.IsPow2(maxSize) || maxSize > Virtio.Virtqueue.MaxQueueSizeLimit)
        {
            throw new ArgumentException($"the maximum queue size must be a power of two up to {Virtio.Virtqueue.MaxQueueSizeLimit}, not {maxSize}", nameof(backend));
        }

        _backend = backend;
        loggerFactory ??= NullLoggerFactory.Instance;
        _logger = loggerFactory.CreateLogger<VhostUserDaemon>();
        _protocolLogger = loggerFactory.CreateLogger<VhostUserBackendRequestDispatcher>();
        _metrics = new VhostUserBackendMetrics(() => IsConnected, () => ConnectionCount);
        _vrings = new Vring[queues];
        for (int i = 0; i < queues; i++)
        {
            _vrings[i] = new Vring(i, maxSize, _metrics);
        }

        IReadOnlyList<IReadOnlyList<int>> groups = backend.QueuesPerWorker;
        ArgumentNullException.ThrowIfNull(groups, nameof(IVhostUserBackend.QueuesPerWorker));
        _workerOfQueue = new VhostUserWorker[queues];
        _workers = new VhostUserWorker[groups.Count];
        try
        {
            ValidateGroups(groups, queues);
            for (int t = 0; t < groups.Count; t++)
            {
                int[] indices = [.. groups[t]];
                Array.Sort(indices);
                var mine = new List<Vring>(indices.Length);
                foreach (int q in indices)
                {
                    mine.Add(_vrings[q]);
                }

                _workers[t] = new VhostUserWorker(backend, [.. mine], t, _logger, options.WorkerGroup?.Thread(t, groups.Count));
                foreach (Vring v in mine)
                {
                    _workerOfQueue[v.Index] = _workers[t];
                }
            }
        }
        catch
        {
            foreach (VhostUserWorker? w in _workers)
            {
                w?.Dispose();
            }

            _metrics.Dispose();
            throw;
        }
    }

    /// <summary>The rings, by queue index.</summary>
    public IReadOnlyList<Vring> Vrings => _vrings;

    /// <summary>The workers, by index (register device fds on them).</summary>
    public IReadOnlyList<VhostUserWorker> Workers => _workers;

    /// <summary>Whether a front-end is connected now.</summary>
    public bool IsConnected => _current is not null;

    /// <summary>The number of front-end connections accepted so far (the current one included).</summary>
    public long ConnectionCount => Interlocked.Read(ref _connections);

    /// <summary>The instruments (tests listen to this daemon's meter only).</summary>
    internal VhostUserBackendMetrics Metrics => _metrics;

    /// <summary>The listening socket path, when the daemon listens on a path (<see cref="Start(string)"/>, <see cref="Start(VhostUserListener)"/>).</summary>
    public string? SocketPath => _source?.ListenPath;

    /// <summary>Listens on <paramref name="socketPath"/> (mode 0600, a stale socket file replaced) and serves front-ends one after another.</summary>
    /// <param name="socketPath">The socket path.</param>
    /// <exception cref="VhostUserException">The socket cannot be created (for example another daemon listens there).</exception>
    /// <exception cref="InvalidOperationException">The daemon was already started.</exception>
    public void Start(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        lock (_lock)
        {
            ThrowIfStartedOrDisposed();
            StartCore(new ListeningFrontendSource(new VhostUserListener(socketPath), ownsListener: true, hasPath: true));
        }

        Log.Listening(_logger, socketPath);
    }

    /// <summary>Serves front-ends that connect to <paramref name="listener"/>, which the caller keeps owning.</summary>
    /// <param name="listener">The listener.</param>
    /// <exception cref="InvalidOperationException">The daemon was already started.</exception>
    public void Start(VhostUserListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_lock)
        {
            ThrowIfStartedOrDisposed();
            StartCore(new ListeningFrontendSource(listener, ownsListener: false, hasPath: true));
        }
    }

    /// <summary>
    /// Serves a socket the daemon did not open (the <c>--fd</c> convention, systemd socket
    /// activation: <see cref="SystemdSocketActivation"/>), which the daemon owns from now on. A
    /// connected socket is one front-end: the daemon ends when it disconnects. A listening socket
    /// (<c>SO_ACCEPTCONN</c>) is served like <see cref="Start(VhostUserListener)"/>: front-ends are
    /// accepted one after another until the daemon stops.
    /// </summary>
    /// <param name="socket">A connected or listening AF_UNIX stream socket.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid, or not a Unix stream socket (not a socket, a datagram socket, another address family); the caller keeps it then.</exception>
    /// <exception cref="InvalidOperationException">The daemon was already started.</exception>
    public void Start(SafeFileHandle socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        lock (_lock)
        {
            ThrowIfStartedOrDisposed();
            bool listening = InheritedSocket.IsListening(socket, nameof(socket));
            string description = $"fd {socket.DangerousGetHandle()}";
            StartCore(listening
                ? new ListeningFrontendSource(new VhostUserListener(socket, description), ownsListener: true, hasPath: false)
                : new ConnectedFrontendSource(socket));
            if (listening)
            {
                Log.ListeningOnInherited(_logger, description);
            }
        }
    }

    /// <summary>
    /// Client mode: connects to a front-end that listens on <paramref name="socketPath"/> (QEMU
    /// <c>-chardev socket,path=...,server=on,wait=off</c>) and serves it; whenever it goes away
    /// (QEMU restarted, the connection broke) the device is reset as between any two front-ends and
    /// the daemon connects again. A front-end that is not there yet, refuses, or has a full backlog
    /// is retried after <see cref="VhostUserDaemonOptions.ReconnectDelay"/>, doubled per failure up
    /// to <see cref="VhostUserDaemonOptions.MaxReconnectDelay"/>, for as long as the daemon runs
    /// (a connection that lasted at least that maximum starts the backoff over). Returns at once:
    /// connecting happens on the control thread, never blocks it (non-blocking connects), and
    /// <see cref="Stop"/> ends a pending pause at once.
    /// </summary>
    /// <param name="socketPath">The front-end's socket path.</param>
    /// <exception cref="ArgumentException">The path is empty or too long for a Unix socket.</exception>
    /// <exception cref="InvalidOperationException">The daemon was already started.</exception>
    public void Connect(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        UnixSocket.FillAddress(socketPath, out _);
        lock (_lock)
        {
            ThrowIfStartedOrDisposed();
            Log.Connecting(_logger, socketPath);
            StartCore(new ReconnectingFrontendSource(socketPath, _options.ReconnectDelay, _options.MaxReconnectDelay, _logger));
        }
    }

    /// <summary>
    /// Stops serving: the current front-end is disconnected, workers stop, everything is released.
    /// Returns once the control thread and the workers have ended. Idempotent.
    /// </summary>
    public void Stop()
    {
        Thread? control = BeginStop();
        if (control is null)
        {
            StopWorkers();
        }
        else if (control != Thread.CurrentThread)
        {
            control.Join();
        }

        // Called on the control thread (from a device callback): that thread stops the workers
        // once the message in hand is done.
        _completion.TrySetResult();
    }

    /// <summary>
    /// Stops serving (see <see cref="Stop"/>) without blocking the caller: the control thread
    /// disconnects the front-end and stops the workers, and the task completes when it has.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting (the daemon still stops).</param>
    /// <returns>A task that completes when the daemon stopped.</returns>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (BeginStop() is null)
        {
            StopWorkers();
        }

        return _workersStopped.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Waits until the daemon stops (<see cref="Stop"/>, or the front-end of a connected-socket start went away).</summary>
    public void Wait() => _completion.Task.GetAwaiter().GetResult();

    /// <summary>Waits until the daemon stops.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the daemon stopped.</returns>
    public Task WaitAsync(CancellationToken cancellationToken = default) => _completion.Task.WaitAsync(cancellationToken);

    /// <summary>Serves on <paramref name="socketPath"/> until <paramref name="cancellationToken"/> is cancelled (for a plain <c>Main</c>).</summary>
    /// <param name="socketPath">The socket path.</param>
    /// <param name="cancellationToken">Stops the daemon.</param>
    public void Run(string socketPath, CancellationToken cancellationToken = default)
    {
        Start(socketPath);
        using (cancellationToken.Register(static d => ((VhostUserDaemon)d!).Stop(), this))
        {
            Wait();
        }
    }

    /// <summary>Stops the daemon and releases its threads, epoll sets, eventfds and listener. Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        Stop();
        foreach (VhostUserWorker w in _workers)
        {
            w.Dispose();
        }

        foreach (Vring v in _vrings)
        {
            v.ReleaseAbandoned();
            v.Queue.Dispose();
        }

        _source?.Dispose();
        _metrics.Dispose();
        _stop.Dispose();
    }

    private static void ValidateGroups(IReadOnlyList<IReadOnlyList<int>> groups, int queues)
    {
        if (groups.Count == 0)
        {
            throw new ArgumentException("QueuesPerWorker must name at least one worker", nameof(groups));
        }

        var seen = new bool[queues];
        int covered = 0;
        for (int t = 0; t < groups.Count; t++)
        {
            IReadOnlyList<int>? group = groups[t];
            if (group is null || group.Count == 0)
            {
                throw new ArgumentException($"worker {t} serves no queue", nameof(groups));
            }

            foreach (int q in group)
            {
                if ((uint)q >= (uint)queues)
                {
                    throw new ArgumentException($"worker {t} names queue {q}, which the device does not have (it has {queues})", nameof(groups));
                }

                if (seen[q])
                {
                    throw new ArgumentException($"queue {q} is named by more than one worker (or twice by worker {t})", nameof(groups));
                }

                seen[q] = true;
                covered++;
            }
        }

        if (covered != queues)
        {
            throw new ArgumentException($"queue {Array.IndexOf(seen, false)} has no worker ({queues - covered} queues without one)", nameof(groups));
        }
    }

    private void ThrowIfStartedOrDisposed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_started)
        {
            throw new InvalidOperationException("the daemon was already started");
        }
    }

    private void StartCore(FrontendSource source)
    {
        _source = source;
        _started = true;
        GuardGuestMemory();
        foreach (VhostUserWorker w in _workers)
        {
            w.Start();
        }

        _backend.OnWorkersStarted(_workers);
        _control = new Thread(ControlThread) { IsBackground = true, Name = "vhost-user control" };
        _control.Start();
    }

    /// <summary>
    /// The control thread: serves front-ends until the daemon stops (or, started on a connected
    /// socket, until that front-end leaves and the daemon is then stopped), then stops the workers.
    /// </summary>
    private void ControlThread()
    {
        Serve();
        _stop.Token.WaitHandle.WaitOne();
        StopWorkers();
    }

    /// <summary>Begins stopping (once): no new front-end, the current one disconnected.</summary>
    /// <returns>The control thread, or <see langword="null"/> when the daemon never started.</returns>
    private Thread? BeginStop()
    {
        lock (_lock)
        {
            if (!_stopped)
            {
                _stopped = true;
                _stop.Cancel();
                _current?.Shutdown();
            }

            return _control;
        }
    }

    private void StopWorkers()
    {
        if (Interlocked.Exchange(ref _workersStopping, 1) == 0)
        {
            foreach (VhostUserWorker w in _workers)
            {
                w.Stop();
            }

            _workersStopped.TrySetResult();
            _completion.TrySetResult();
        }
    }

    private void Serve()
    {
        CancellationToken token = _stop.Token;
        FrontendSource source = _source!;
        TimeSpan? previousLasted = null;
        try
        {
            while (!token.IsCancellationRequested)
            {
                SafeFileHandle? socket;
                try
                {
                    socket = source.Next(previousLasted, token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (Exception e) when (e is VhostException or ObjectDisposedException)
                {
                    Log.AcceptFailed(_logger, e);
                    if (source.IsExhausted)
                    {
                        break;
                    }

                    Thread.Sleep(50);
                    continue;
                }

                if (socket is null)
                {
                    break;
                }

                long started = Environment.TickCount64;
                ServeConnection(new VhostUserConnection(socket), token);
                previousLasted = TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
            }
        }
        finally
        {
            _completion.TrySetResult();
        }
    }

    private bool IsPeerAllowed(VhostUserConnection connection)
    {
        if (_options.AllowedPeerUserIds is null && _options.AllowedPeerGroupIds is null)
        {
            return true;
        }

        Interop.ucred peer;
        try
        {
            peer = UnixSocket.PeerCredentials(connection.Handle);
        }
        catch (VhostException e)
        {
            Log.ConnectionFailed(_logger, _connections, e);
            return false;
        }

        if (_options.IsPeerAllowed(peer.uid, peer.gid))
        {
            return true;
        }

        Log.PeerRefused(_logger, peer.pid, peer.uid, peer.gid);
        return false;
    }

    private void ServeConnection(VhostUserConnection connection, CancellationToken token)
    {
        long number = Interlocked.Increment(ref _connections);
        if (!IsPeerAllowed(connection))
        {
            connection.Dispose();
            return;
        }

        var negotiation = new VhostUserNegotiation();
        var handler = new VhostUserDaemonHandler(_backend, _vrings, _workerOfQueue, _workers, negotiation, _logger, _options.MemoryFilePolicy, _options.InFlightTimeout, _options.DeviceStateTimeout, _options.Postcopy, _options.IotlbMissTimeout);
        handler.FrontendSocket = connection.Handle;
        var dispatcher = new VhostUserBackendRequestDispatcher(connection, handler, negotiation, _protocolLogger);
        lock (_lock)
        {
            _current = connection;
            if (token.IsCancellationRequested)
            {
                connection.Shutdown();
            }
        }

        Log.Connected(_logger, number);
        try
        {
            dispatcher.Run(token);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            // Whatever a front-end made happen, it costs the connection, never the daemon.
            Log.ConnectionFailed(_logger, number, e);
        }
        finally
        {
            try
            {
                handler.Dispose();
            }
            catch (Exception e)
            {
                Log.ConnectionFailed(_logger, number, e);
            }

            dispatcher.Dispose();
            lock (_lock)
            {
                _current = null;
            }

            Log.Disconnected(_logger, number);
        }
    }
}
