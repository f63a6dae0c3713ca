using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace VhostUserBackend.Hosting;

/// <summary>
/// Runs a <see cref="VhostUserDaemon"/> for <typeparamref name="TDevice"/> as a hosted service:
/// when the host starts it serves the socket systemd passed (<see cref="VhostUserBackendOptions.SocketActivation"/>),
/// listens on <see cref="VhostUserBackendOptions.SocketPath"/>, or connects to the front-end
/// listening on <see cref="VhostUserBackendOptions.ConnectPath"/>; when the host stops, it
/// disconnects the front-end, stops the workers and removes the socket. Registered by
/// <c>services.AddVhostUserBackend&lt;TDevice&gt;(...)</c>, which also makes it resolvable from the
/// container (read <see cref="State"/> or <see cref="IsConnected"/>, or use the registered health check).
/// </summary>
/// <typeparam name="TDevice">The device.</typeparam>
/// <remarks>
/// A start failure (the socket is in use, the path is not writable, the device is invalid) fails the
/// host's start with that exception and leaves <see cref="State"/> <see cref="VhostUserBackendState.Faulted"/>.
/// Logs go to the host's <see cref="ILoggerFactory"/> (categories <c>VhostUserBackend.*</c> and
/// <c>Vhost.User.*</c>); metrics to the meter <see cref="VhostUserDaemon.MeterName"/>.
/// </remarks>
public sealed class VhostUserBackendService<TDevice> : IHostedService, IDisposable
    where TDevice : class, IVhostUserBackend
{
    private readonly IOptionsMonitor<VhostUserBackendOptions> _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private VhostUserDaemon? _daemon;
    private volatile bool _stopping;
    private volatile VhostUserBackendState _state;
    private volatile Exception? _failure;
    private string? _socketPath;
    private bool _disposed;

    /// <summary>Creates the service (the container does this; the daemon is created at start).</summary>
    /// <param name="device">The device to serve.</param>
    /// <param name="options">The options; the instance named <see cref="OptionsName"/> is used.</param>
    /// <param name="loggerFactory">The host's logging, or <see langword="null"/> for none.</param>
    public VhostUserBackendService(TDevice device, IOptionsMonitor<VhostUserBackendOptions> options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        Device = device;
        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<VhostUserBackendService<TDevice>>();
    }

    /// <summary>The name of this device's <see cref="VhostUserBackendOptions"/> instance (the full name of <typeparamref name="TDevice"/>), so several devices can run in one host.</summary>
    public static string OptionsName { get; } = typeof(TDevice).FullName ?? typeof(TDevice).Name;

    /// <summary>The name of this device's health check registration: <c>vhost-user:</c> and the device type's name.</summary>
    public static string HealthCheckName { get; } = "vhost-user:" + typeof(TDevice).Name;

    /// <summary>The device served.</summary>
    public TDevice Device { get; }

    /// <summary>The daemon, once the service started (<see langword="null"/> before).</summary>
    public VhostUserDaemon? Daemon => _daemon;

    /// <summary>Where the service is in its life cycle.</summary>
    public VhostUserBackendState State => _state;

    /// <summary>Why the service is <see cref="VhostUserBackendState.Faulted"/>, or <see langword="null"/>.</summary>
    public Exception? Failure => _failure;

    /// <summary>Where the daemon serves (set at start): the socket path it listens on, <c>connect:</c> and the front-end's path in client mode, or <c>fd 3 (systemd)</c>.</summary>
    public string? SocketPath => _socketPath;

    /// <summary>Whether a front-end is connected now.</summary>
    public bool IsConnected => _state == VhostUserBackendState.Running && (_daemon?.IsConnected ?? false);

    /// <summary>The number of front-end connections accepted so far.</summary>
    public long ConnectionCount => _daemon?.ConnectionCount ?? 0;

    /// <summary>
    /// Creates the daemon and starts listening. This is synchronous (creating and binding the
    /// socket does not wait on anything): the daemon accepts front-ends when it returns.
    /// </summary>
    /// <param name="cancellationToken">Checked before starting.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="OptionsValidationException">The options are invalid (no socket path).</exception>
    /// <exception cref="Vhost.User.VhostUserException">The socket cannot be created.</exception>
    /// <exception cref="ArgumentException">The device's queue layout is invalid.</exception>
    /// <exception cref="InvalidOperationException">The service was already started.</exception>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        VhostUserBackendOptions options = _options.Get(OptionsName);
        ValidateOptionsResult valid = VhostUserBackendOptionsValidator.Check(options);
        if (valid.Failed)
        {
            var e = new OptionsValidationException(OptionsName, typeof(VhostUserBackendOptions), valid.Failures);
            Fault(e);
            throw e;
        }

        VhostUserDaemon daemon;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_daemon is not null)
            {
                throw new InvalidOperationException("the service was already started");
            }

            try
            {
                daemon = new VhostUserDaemon(Device, options.Daemon, _loggerFactory);
            }
            catch (Exception e)
            {
                Fault(e);
                throw;
            }

            _daemon = daemon;
        }

        try
        {
            _socketPath = StartDaemon(daemon, options);
        }
        catch (Exception e)
        {
            Fault(e);
            throw;
        }

        _state = VhostUserBackendState.Running;
        _ = WatchAsync(daemon);
        return Task.CompletedTask;
    }

    /// <summary>Disconnects the front-end, stops the workers and releases everything (the socket file is removed).</summary>
    /// <param name="cancellationToken">Signalled when the host's shutdown timeout expires: the service stops waiting (the daemon still stops).</param>
    /// <returns>A task that completes when the daemon stopped.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        VhostUserDaemon? daemon = _daemon;
        if (daemon is null)
        {
            return;
        }

        await daemon.StopAsync(cancellationToken).ConfigureAwait(false);
        daemon.Dispose();
        if (_state == VhostUserBackendState.Running)
        {
            _state = VhostUserBackendState.Stopped;
        }

        Log.Stopped(_logger, typeof(TDevice).Name);
    }

    /// <summary>Stops the daemon if it still runs and releases it. Idempotent.</summary>
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

        _stopping = true;
        _daemon?.Dispose();
        if (_state == VhostUserBackendState.Running)
        {
            _state = VhostUserBackendState.Stopped;
        }
    }

    /// <summary>Starts the daemon where the options say; returns the description of <see cref="SocketPath"/>.</summary>
    private static string StartDaemon(VhostUserDaemon daemon, VhostUserBackendOptions options)
    {
        if (options.SocketActivation)
        {
            Microsoft.Win32.SafeHandles.SafeFileHandle? passed = SystemdSocketActivation.TakeFirstSocket();
            if (passed is not null)
            {
                try
                {
                    daemon.Start(passed);
                }
                catch
                {
                    passed.Dispose();
                    throw;
                }

                return $"fd {SystemdSocketActivation.FirstFd} (systemd)";
            }
        }

        if (!string.IsNullOrWhiteSpace(options.ConnectPath))
        {
            daemon.Connect(options.ConnectPath);
            return "connect:" + options.ConnectPath;
        }

        daemon.Start(options.SocketPath!);
        return options.SocketPath!;
    }

    private void Fault(Exception e)
    {
        _failure = e;
        _state = VhostUserBackendState.Faulted;
        Log.StartFailed(_logger, typeof(TDevice).Name, e);
        lock (_lock)
        {
            _daemon?.Dispose();
        }
    }

    private async Task WatchAsync(VhostUserDaemon daemon)
    {
        await daemon.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        if (!_stopping)
        {
            _failure = new InvalidOperationException($"the vhost-user daemon for {typeof(TDevice).Name} ended without being stopped");
            _state = VhostUserBackendState.Faulted;
            Log.EndedUnexpectedly(_logger, typeof(TDevice).Name);
        }
    }
}
