using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// Serves the back-end channel on the front-end side: reads back-end requests, checks header,
/// size, fds and feature gating, calls the <see cref="IVhostUserFrontendRequestHandler"/>, and
/// replies when the back-end set NEED_REPLY (u64 0, or a negative errno on failure).
/// SHARED_OBJECT_LOOKUP is always answered (u64 plus the dmabuf fd).
/// </summary>
/// <remarks>Use from one thread; <see cref="VhostUserFrontend.SetBackendRequestFd"/> runs one on its own thread.</remarks>
public sealed partial class VhostUserFrontendRequestDispatcher : IDisposable, IVhostUserRequestServer
{
    private readonly VhostUserEndpoint _endpoint;
    private readonly IVhostUserFrontendRequestHandler _handler;
    private readonly ILogger _logger;

    /// <summary>Creates a dispatcher over <paramref name="connection"/>, which it owns from now on.</summary>
    /// <param name="connection">The front-end's end of the back-end channel.</param>
    /// <param name="handler">What to do with each request.</param>
    /// <param name="protocolFeatures">The negotiated protocol features (they gate the requests).</param>
    /// <param name="features">The acked virtio features (ACCESS_PLATFORM gates IOTLB messages).</param>
    /// <param name="logger">Optional logger.</param>
    public VhostUserFrontendRequestDispatcher(VhostUserConnection connection, IVhostUserFrontendRequestHandler handler, VhostUserProtocolFeatures protocolFeatures, ulong features = 0, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(handler);
        _endpoint = new VhostUserEndpoint(connection);
        _handler = handler;
        ProtocolFeatures = protocolFeatures;
        Features = features;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The negotiated protocol features.</summary>
    public VhostUserProtocolFeatures ProtocolFeatures { get; }

    /// <summary>The acked virtio features.</summary>
    public ulong Features { get; }

    /// <summary>The connection.</summary>
    public VhostUserConnection Connection => _endpoint.Connection;

    /// <summary>
    /// Serves requests until the back-end closes the channel (returns normally) or the token is
    /// cancelled. Failed requests are answered (when the back-end asked) and serving goes on;
    /// a broken or malformed stream ends the loop with its exception.
    /// </summary>
    /// <param name="cancellationToken">Stops serving.</param>
    /// <exception cref="VhostUserException">The stream broke.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public void Run(CancellationToken cancellationToken = default) => _endpoint.Serve(this, cancellationToken);

    /// <summary>Reads and handles one back-end request.</summary>
    /// <param name="timeoutMilliseconds">How long to wait; -1 waits forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="VhostUserException">The request was malformed or gated, the handler failed (after the reply), or the channel broke.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public void HandleNextRequest(int timeoutMilliseconds = -1, CancellationToken cancellationToken = default)
    {
        using VhostUserMessage message = _endpoint.Receive(timeoutMilliseconds, cancellationToken);
        VhostUserHeader header = message.Header;
        VhostUserLogging.BackendRequestReceived(_logger, header.Request, header.Size, message.Fds.Count);
        if (header.IsReply)
        {
            throw new VhostUserException(VhostUserError.InvalidHeader, $"back-end request {header.Request} carries the reply flag");
        }

        var request = (BackendRequest)header.Request;
        bool lookup = request == BackendRequest.SharedObjectLookup;
        try
        {
            if (!Enum.IsDefined(request))
            {
                throw new VhostUserException(VhostUserError.InvalidMessage, Errno.EINVAL, "back-end request", $"unknown back-end request code {header.Request}");
            }

            Validate(request, message);
            SafeFileHandle? reply = Dispatch(request, message);
            using (reply)
            {
                if (lookup)
                {
                    _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(0), [reply!]);
                }
                else if (header.NeedsReply)
                {
                    _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(0));
                }
            }
        }
        catch (Exception e) when (e is VhostException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            if ((header.NeedsReply || lookup) && !(e is VhostUserException { Reason: VhostUserError.SocketBroken or VhostUserError.SocketError }))
            {
                Errno errno = (e as VhostException)?.Errno ?? (e is VhostUserException { Reason: VhostUserError.NotSupported } ? Errno.ENOSYS : Errno.EINVAL);
                if (errno == Errno.None)
                {
                    errno = Errno.EIO;
                }

                _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(unchecked((ulong)-(long)errno)));
            }

            if (e is VhostUserException)
            {
                throw;
            }

            throw new VhostUserException(VhostUserError.RequestHandlerError, $"{request} failed in the handler: {e.Message}", e);
        }
    }

    /// <summary>Disposes the connection.</summary>
    public void Dispose() => _endpoint.Dispose();

    /// <inheritdoc/>
    void IVhostUserRequestServer.OnPeerClosed() => VhostUserLogging.BackendChannelClosed(_logger);

    /// <inheritdoc/>
    bool IVhostUserRequestServer.ContinuesAfter(VhostUserException e)
    {
        if (e.Reason is VhostUserError.RequestHandlerError or VhostUserError.NotSupported
            or VhostUserError.InactiveFeature or VhostUserError.InvalidMessage or VhostUserError.IncorrectFds)
        {
            VhostUserLogging.BackendRequestFailed(_logger, e.Message);
            return true;
        }

        return false;
    }

    private static (int Size, int MinFds, int MaxFds, VhostUserProtocolFeatures Needed) Shape(BackendRequest request) => request switch
    {
        BackendRequest.IotlbMsg => (32, 0, 0, VhostUserProtocolFeatures.None),
        BackendRequest.ConfigChangeMsg => (0, 0, 0, VhostUserProtocolFeatures.Config),
        BackendRequest.VringHostNotifierMsg => (24, 0, 1, VhostUserProtocolFeatures.HostNotifier),
        BackendRequest.VringCall or BackendRequest.VringErr => (8, 0, 0, VhostUserProtocolFeatures.InbandNotifications),
        BackendRequest.SharedObjectAdd or BackendRequest.SharedObjectRemove or BackendRequest.SharedObjectLookup => (16, 0, 0, VhostUserProtocolFeatures.SharedObject),
        BackendRequest.ShmemMap => (40, 1, 1, VhostUserProtocolFeatures.Shmem | VhostUserProtocolFeatures.BackendSendFd),
        BackendRequest.ShmemUnmap => (40, 0, 0, VhostUserProtocolFeatures.Shmem),
        _ => (-1, 0, 0, VhostUserProtocolFeatures.None),
    };

    private void Validate(BackendRequest request, VhostUserMessage message)
    {
        (int size, int minFds, int maxFds, VhostUserProtocolFeatures needed) = Shape(request);
        if (message.Body.Length != size)
        {
            throw new VhostUserException(VhostUserError.InvalidMessage, $"{request}: payload is {message.Body.Length} bytes, expected {size}");
        }

        if (message.Fds.Count < minFds || message.Fds.Count > maxFds)
        {
            throw new VhostUserException(VhostUserError.IncorrectFds, $"{request}: carries {message.Fds.Count} fds, expected {minFds} to {maxFds}");
        }

        if (message.Fds.Count > 0)
        {
            needed |= VhostUserProtocolFeatures.BackendSendFd;
        }

        if ((ProtocolFeatures & needed) != needed)
        {
            throw new VhostUserException(VhostUserError.InactiveFeature, $"{request} needs protocol feature {needed}, which was not negotiated");
        }

        if (request == BackendRequest.IotlbMsg && (Features & (ulong)VhostUserVirtioFeatures.AccessPlatform) == 0)
        {
            throw new VhostUserException(VhostUserError.InactiveFeature, "IotlbMsg needs VIRTIO_F_ACCESS_PLATFORM, which was not acked");
        }
    }

    private SafeFileHandle? Dispatch(BackendRequest request, VhostUserMessage message)
    {
        switch (request)
        {
            case BackendRequest.IotlbMsg:
                {
                    VhostUserIotlbMessage iotlb = message.Read<VhostUserIotlbMessage>();
                    if (!iotlb.IsValid())
                    {
                        throw new VhostUserException(VhostUserError.InvalidMessage, "IotlbMsg: invalid IOTLB message");
                    }

                    _handler.IotlbMessage(iotlb);
                    return null;
                }

            case BackendRequest.ConfigChangeMsg:
                _handler.ConfigChange();
                return null;
            case BackendRequest.VringHostNotifierMsg:
                {
                    VhostUserVringArea area = message.Read<VhostUserVringArea>();
                    if (!area.IsValid() || area.HasNoFd != (message.Fds.Count == 0))
                    {
                        throw new VhostUserException(area.IsValid() ? VhostUserError.IncorrectFds : VhostUserError.InvalidMessage, "VringHostNotifierMsg: invalid area or fd presence does not match the no-fd flag");
                    }

                    _handler.VringHostNotifier(area, message.Fds);
                    return null;
                }

            case BackendRequest.VringCall:
            case BackendRequest.VringErr:
                {
                    VhostUserVringState state = message.Read<VhostUserVringState>();
                    if (!state.IsValid())
                    {
                        throw new VhostUserException(VhostUserError.InvalidMessage, $"{request}: ring index {state.Index} out of range");
                    }

                    if (request == BackendRequest.VringCall)
                    {
                        _handler.VringCall(state);
                    }
                    else
                    {
                        _handler.VringError(state);
                    }

                    return null;
                }

            case BackendRequest.SharedObjectAdd:
            case BackendRequest.SharedObjectRemove:
            case BackendRequest.SharedObjectLookup:
                {
                    VhostUserSharedObject shared = message.Read<VhostUserSharedObject>();
                    if (!shared.IsValid())
                    {
                        throw new VhostUserException(VhostUserError.InvalidMessage, $"{request}: nil or max UUID");
                    }

                    Guid uuid = shared.Uuid.ToGuid();
                    if (request == BackendRequest.SharedObjectAdd)
                    {
                        _handler.SharedObjectAdd(uuid);
                        return null;
                    }

                    if (request == BackendRequest.SharedObjectRemove)
                    {
                        _handler.SharedObjectRemove(uuid);
                        return null;
                    }

                    return _handler.SharedObjectLookup(uuid)
                        ?? throw new VhostUserException(VhostUserError.RequestHandlerError, Errno.ENOENT, "SharedObjectLookup", $"no object {uuid}");
                }

            case BackendRequest.ShmemMap:
            case BackendRequest.ShmemUnmap:
                {
                    VhostUserShmemMap map = message.Read<VhostUserShmemMap>();
                    if (request == BackendRequest.ShmemMap)
                    {
                        if (!map.IsValid())
                        {
                            throw new VhostUserException(VhostUserError.InvalidMessage, "ShmemMap: zero length, wrapping range or unknown flags");
                        }

                        _handler.ShmemMap(map, message.Fds);
                    }
                    else
                    {
                        if (map.Length == 0 || map.ShmemOffset > ulong.MaxValue - map.Length)
                        {
                            throw new VhostUserException(VhostUserError.InvalidMessage, "ShmemUnmap: zero length or wrapping range");
                        }

                        _handler.ShmemUnmap(map);
                    }

                    return null;
                }

            default:
                return null;
        }
    }
}
