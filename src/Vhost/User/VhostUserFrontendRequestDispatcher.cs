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
/// SHARED_OBJECT_LOOKUP is always answered (u64 plus the dmabuf fd). Each request is one row of
/// the back-end request table and one handler method.
/// </summary>
/// <remarks>Use from one thread; <see cref="VhostUserFrontend.SetBackendRequestFd"/> runs one on its own thread.</remarks>
internal sealed partial class VhostUserFrontendRequestDispatcher : IDisposable, IVhostUserRequestServer
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

    /// <summary>
    /// Reads and handles one back-end request: the one dispatch path. The request's table row gives
    /// its shape and gates, checked here; its handler method checks the values and calls the
    /// <see cref="IVhostUserFrontendRequestHandler"/>; the row's reply kind decides the answer, and
    /// a failure is answered with a negative errno where the back-end waits for an answer.
    /// </summary>
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
            throw new VhostUserProtocolException(VhostUserViolation.InvalidHeader, $"back-end request {header.Request} carries the reply flag");
        }

        var request = (BackendRequest)header.Request;
        bool known = TryGetRow(header.Request, out VhostUserRequestRow<BackendRequestHandler> row);
        bool ownReply = known && row.Reply == VhostUserReplyKind.Own;
        try
        {
            if (!known)
            {
                throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"back-end request: unknown code {header.Request} (answered with EINVAL)");
            }

            CheckShapeAndGates(request, row, message);
            SafeFileHandle? reply = row.Handle(this, request, message);
            using (reply)
            {
                if (ownReply)
                {
                    _endpoint.Reply(header.Request, new VhostUserU64(0), [reply!]);
                }
                else if (header.NeedsReply)
                {
                    _endpoint.Reply(header.Request, new VhostUserU64(0));
                }
            }
        }
        catch (Exception e) when (e is VhostException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            if ((header.NeedsReply || ownReply) && !IsTransportFailure(e))
            {
                Errno errno = (e as VhostException)?.Errno ?? (e is NotSupportedException ? Errno.ENOSYS : Errno.EINVAL);
                if (errno == Errno.None)
                {
                    errno = Errno.EIO;
                }

                _endpoint.Reply(header.Request, new VhostUserU64(unchecked((ulong)-(long)errno)));
            }

            if (e is VhostUserException)
            {
                throw;
            }

            throw new VhostUserRequestHandlerException($"{request} failed in the handler: {e.Message}", e);
        }
    }

    /// <summary>Disposes the connection.</summary>
    public void Dispose() => _endpoint.Dispose();

    /// <summary>
    /// Whether the socket itself failed (closed, broken, or another socket errno, which the base
    /// <see cref="VhostUserException"/> carries), so no failure reply can be sent.
    /// </summary>
    private static bool IsTransportFailure(Exception e)
        => e is VhostUserConnectionClosedException || (e is VhostUserException && e.GetType() == typeof(VhostUserException));

    /// <inheritdoc/>
    void IVhostUserRequestServer.OnPeerClosed() => VhostUserLogging.BackendChannelClosed(_logger);

    /// <inheritdoc/>
    bool IVhostUserRequestServer.ContinuesAfter(VhostUserException e)
    {
        // A failed handler, or a whole message that broke a rule of its own (size, fds, an inactive
        // feature): the stream is still in step. A bad header or an oversized message is not.
        if (e is VhostUserRequestHandlerException
            or VhostUserProtocolException { Violation: VhostUserViolation.InvalidMessage or VhostUserViolation.IncorrectFds or VhostUserViolation.InactiveFeature })
        {
            VhostUserLogging.BackendRequestFailed(_logger, e.Message);
            return true;
        }

        return false;
    }
}
