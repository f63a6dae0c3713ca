using Microsoft.Extensions.Logging;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Config;

/// <summary>
/// Tells one connection's front-end that the device changed its <see cref="VirtioConfigSpace"/>
/// (CONFIG_CHANGE_MSG on the back-end channel), while the driver runs (DRIVER_OK: before that
/// the driver has not read the space yet, and reads the new bytes when it does).
/// </summary>
/// <remarks>
/// The message is sent from a thread-pool thread, never from the thread that changed the space
/// nor from the daemon's control thread: with REPLY_ACK the send waits for the front-end's
/// acknowledgement, and QEMU answers a config change by reading the config space on the main
/// socket (GET_CONFIG) before it acknowledges, so the control thread must be free to serve that
/// read, and a worker must never wait for the front-end. Changes that come while a send is
/// queued are covered by it (the front-end reads the whole space).
/// </remarks>
internal sealed class ConfigChangeNotifier : IDisposable
{
    private readonly VirtioConfigSpace _space;
    private readonly ILogger _logger;
    private readonly Lock _sendLock = new();
    private VhostUserBackendChannel? _channel;
    private int _driverRunning;
    private int _queued;
    private int _unseenLogged;
    private int _disposed;

    public ConfigChangeNotifier(VirtioConfigSpace space, ILogger logger)
    {
        _space = space;
        _logger = logger;
        _space.Changed += OnChanged;
    }

    /// <summary>The back-end channel of the connection (control thread), or <see langword="null"/>.</summary>
    public VhostUserBackendChannel? Channel
    {
        set => Volatile.Write(ref _channel, value);
    }

    /// <summary>Whether the driver runs (DRIVER_OK), from the driver status (control thread).</summary>
    public bool DriverRunning
    {
        set => Volatile.Write(ref _driverRunning, value ? 1 : 0);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _space.Changed -= OnChanged;
            Volatile.Write(ref _channel, null);
        }
    }

    /// <summary>The device changed the space (any thread).</summary>
    private void OnChanged()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        if (Volatile.Read(ref _driverRunning) == 0)
        {
            Log.ConfigChangeBeforeDriver(_logger);
            return;
        }

        VhostUserBackendChannel? channel = Volatile.Read(ref _channel);
        string? unseen = channel is null
            ? "the front-end set up no back-end channel (BACKEND_REQ not negotiated, or no SET_BACKEND_REQ_FD)"
            : (channel.ProtocolFeatures & VhostUserProtocolFeatures.Config) == 0
                ? "the front-end did not negotiate CONFIG"
                : null;
        if (unseen is not null)
        {
            if (Interlocked.Exchange(ref _unseenLogged, 1) == 0)
            {
                Log.ConfigChangeUnseen(_logger, unseen);
            }

            return;
        }

        if (Interlocked.Exchange(ref _queued, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static n => n.Send(), this, preferLocal: false);
        }
    }

    private void Send()
    {
        lock (_sendLock)
        {
            Volatile.Write(ref _queued, 0);
            VhostUserBackendChannel? channel = Volatile.Read(ref _channel);
            if (channel is null || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            try
            {
                channel.SendConfigChange();
                Log.ConfigChangeSent(_logger);
            }
            catch (ObjectDisposedException)
            {
                // The connection ended meanwhile; the next driver reads the space anew.
            }
            catch (Exception e) when (e is VhostUserException or InvalidOperationException)
            {
                Log.ConfigChangeFailed(_logger, e.Message);
            }
        }
    }
}
