using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.User;

/// <summary>
/// Serves one vhost-user connection on the back-end side: reads each front-end message, checks
/// its header, payload size, fd count, feature gating and values, calls the matching
/// <see cref="IVhostUserBackendRequestHandler"/> method, and replies or acknowledges as the spec
/// says. Fds a handler does not take are closed after its call. What is known about each request
/// (size, fds, gates, reply kind, failure form, handler method) is one row of its request table.
/// </summary>
/// <remarks>
/// <para>Replies: requests with a reply of their own always get one; every other request gets a u64
/// acknowledgement (0 ok, 1 failure) when it carries NEED_REPLY. REPLY_ACK is always offered.
/// A GET_CONFIG that fails is answered with a size-0 reply; SET_DEVICE_STATE_FD with its error
/// bits; CHECK_DEVICE_STATE, POSTCOPY_END, IOTLB_MSG and GET_SHARED_OBJECT with a non-zero u64.</para>
/// <para>Failures: a refused request is reported where the protocol has a way (a failed
/// acknowledgement or an error reply) and logged; serving goes on, also when the front-end asked
/// for no acknowledgement (the spec leaves the back-end's state as it was). Only a broken stream
/// (a bad header, a partial message, a disconnect) or a request with a reply of its own that has
/// no failure form (GET_VRING_BASE, SET_LOG_BASE, ...: the front-end waits for an answer it cannot
/// get) ends the connection. An unknown request code (a newer front-end) is logged and answered
/// with a failed acknowledgement when it asks for one. Unused fields that must be zero but are
/// not (DPDK's virtio-user fills GET_VRING_BASE's num with whatever was on its stack) are
/// tolerated and logged.</para>
/// <para>Not thread-safe: use from one thread. The connection is owned by the dispatcher.</para>
/// </remarks>
internal sealed partial class VhostUserBackendRequestDispatcher : IDisposable, IVhostUserRequestServer
{
    private readonly VhostUserEndpoint _endpoint;
    private readonly IVhostUserBackendRequestHandler _handler;
    private readonly ILogger _logger;
    private readonly VhostUserPostcopyState _postcopy = new();
    private readonly VhostUserNegotiation _negotiation;
    private FailureOutcome _lastFailure;
    private FrontendRequest? _lastRequest;
    private (ulong Features, VhostUserProtocolFeatures Protocol)? _loggedNegotiation;
    private bool _replySent;

    /// <summary>Creates a dispatcher over a connected AF_UNIX stream socket (from <see cref="VhostUserListener.Accept"/>), which it owns from now on.</summary>
    /// <param name="socket">The connected socket to a front-end.</param>
    /// <param name="handler">The device logic.</param>
    /// <param name="logger">Optional logger.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public VhostUserBackendRequestDispatcher(SafeFileHandle socket, IVhostUserBackendRequestHandler handler, ILogger? logger = null)
        : this(new VhostUserConnection(socket), handler, logger)
    {
    }

    /// <summary>Creates a dispatcher over <paramref name="connection"/>, which it owns from now on.</summary>
    internal VhostUserBackendRequestDispatcher(VhostUserConnection connection, IVhostUserBackendRequestHandler handler, ILogger? logger = null)
        : this(connection, handler, new VhostUserNegotiation(), logger)
    {
    }

    /// <summary>
    /// Creates a dispatcher over <paramref name="connection"/>, which it owns from now on, storing
    /// what is negotiated in <paramref name="negotiation"/> (which the handler may read).
    /// </summary>
    internal VhostUserBackendRequestDispatcher(VhostUserConnection connection, IVhostUserBackendRequestHandler handler, VhostUserNegotiation negotiation, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(negotiation);
        _endpoint = new VhostUserEndpoint(connection);
        _handler = handler;
        _negotiation = negotiation;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>What became of the last failed request.</summary>
    private enum FailureOutcome
    {
        /// <summary>The connection cannot go on (broken stream, or a front-end waiting for a reply it cannot get).</summary>
        Fatal,

        /// <summary>The front-end was told (failed acknowledgement or error reply).</summary>
        Reported,

        /// <summary>The front-end asked for no acknowledgement; the failure is only logged.</summary>
        Unreported,
    }

    /// <summary>The connection. Sending on it directly puts the stream out of step; use it to poll or shut down.</summary>
    internal VhostUserConnection Connection => _endpoint.Connection;

    /// <summary>The protocol features the front-end acked (SET_PROTOCOL_FEATURES).</summary>
    public VhostUserProtocolFeatures AckedProtocolFeatures => _negotiation.ProtocolFeatures;

    /// <summary>The virtio features the front-end acked (SET_FEATURES; 0 again after RESET_DEVICE).</summary>
    public ulong AckedFeatures => _negotiation.Features;

    /// <summary>
    /// Whether POSTCOPY_LISTEN was handled and POSTCOPY_END not yet: SET_MEM_TABLE and ADD_MEM_REG
    /// are then answered with the back-end's mapping addresses (see
    /// <see cref="IVhostUserBackendRequestHandler.TryGetPostcopyMappingAddress"/>).
    /// </summary>
    public bool IsPostcopyListening => _postcopy.Listening;

    /// <summary>
    /// Serves requests until the front-end disconnects (returns normally) or the token is
    /// cancelled. A request that fails is reported where the protocol allows and logged, and
    /// serving goes on; a broken stream, or a failed request whose front-end waits for a reply it
    /// cannot get, ends the loop with its exception, after which the connection should be dropped.
    /// </summary>
    /// <param name="cancellationToken">Stops serving.</param>
    /// <exception cref="VhostUserException">A failure the front-end could not be told about, or a broken stream.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public void Run(CancellationToken cancellationToken = default) => _endpoint.Serve(this, cancellationToken);

    /// <summary>
    /// Reads and handles one request: the one dispatch path. The request's table row gives its
    /// shape (payload size, fd count) and gates, which are checked here; its handler method checks
    /// the values and calls the <see cref="IVhostUserBackendRequestHandler"/>; then the row's reply
    /// kind decides the acknowledgement, or its failure form how a failure is reported.
    /// </summary>
    /// <param name="timeoutMilliseconds">How long to wait for the request; -1 waits forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="VhostUserException">
    /// The request was malformed or gated (<see cref="VhostUserProtocolException"/>), failed in the
    /// handler (the handler's exception inside), or the connection failed.
    /// Where the protocol allowed, the failure was reported to the front-end first.
    /// </exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public void HandleNextRequest(int timeoutMilliseconds = -1, CancellationToken cancellationToken = default)
    {
        _lastFailure = FailureOutcome.Fatal;
        _replySent = false;
        using VhostUserMessage message = _endpoint.Receive(timeoutMilliseconds, cancellationToken);
        VhostUserHeader header = message.Header;
        VhostUserLogging.RequestReceived(_logger, header.Request, header.Size, message.Fds.Count);
        if (header.IsReply)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidHeader, $"request {header.Request} carries the reply flag");
        }

        if (!TryGetRow(header.Request, out VhostUserRequestRow<FrontendRequestHandler> row))
        {
            // A newer front-end: it only sends a new request after negotiating the feature that
            // gates it, which this back-end did not offer. The body was read and the fds are
            // closed with the message; a NEED_REPLY gets a failed acknowledgement.
            if (header.NeedsReply)
            {
                _endpoint.Reply(header.Request, new VhostUserU64(1));
            }

            VhostUserLogging.UnknownRequest(_logger, header.Request, header.Size, message.Fds.Count, header.NeedsReply ? "answered with a failed acknowledgement" : "ignored");
            return;
        }

        var request = (FrontendRequest)header.Request;
        _lastRequest = request;
        if (_postcopy.TakeAcknowledgement(request, message))
        {
            HandlePostcopyAcknowledgement(header, message);
            return;
        }

        bool postcopyMemory = _postcopy.AnswersWithRegions(request);
        try
        {
            CheckShape(request, row, message);
            CheckGates(request, row);
            row.Handle(this, request, message);
        }
        catch (Exception e) when (e is VhostException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            ReportFailure(header, row.Failure, postcopyMemory);
            if (e is VhostUserException)
            {
                throw;
            }

            throw new VhostUserRequestHandlerException($"{request} failed in the handler: {e.Message}", e);
        }

        // A postcopy region list is the reply of its own: no extra acknowledgement (spec: REPLY_ACK).
        if (row.Reply == VhostUserReplyKind.AckWhenAsked && !_replySent && header.NeedsReply)
        {
            SendU64(request, 0);
        }
    }

    /// <summary>
    /// Shuts the socket down in both directions: the front-end sees a close, and a <see cref="Run"/>
    /// blocked on another thread returns. Call <see cref="Dispose"/> afterwards.
    /// </summary>
    public void Shutdown() => _endpoint.Connection.Shutdown();

    /// <summary>Disposes the connection.</summary>
    public void Dispose() => _endpoint.Dispose();

    /// <inheritdoc/>
    void IVhostUserRequestServer.OnPeerClosed()
    {
        VhostUserLogging.FrontendDisconnected(_logger);
        LogIfNegotiationAbandoned();
    }

    /// <summary>
    /// A front-end that closes the connection right after reading or setting the protocol features
    /// (or the queue count), before SET_FEATURES, found the back-end lacking: QEMU does that when
    /// a protocol feature its device needs is not offered (vhost-user-blk, -input, -gpu without
    /// CONFIG), when the back-end has fewer queues than configured, or when IOMMU support lacks
    /// BACKEND_REQ and REPLY_ACK. Says what was offered, so the reason shows in the back-end's log.
    /// </summary>
    private void LogIfNegotiationAbandoned()
    {
        if (_lastRequest is not (FrontendRequest.GetFeatures or FrontendRequest.GetProtocolFeatures or FrontendRequest.SetProtocolFeatures
            or FrontendRequest.GetQueueNum or FrontendRequest.GetMaxMemSlots))
        {
            return;
        }

        VhostUserProtocolFeatures offered = _handler.GetProtocolFeatures() | VhostUserProtocolFeatures.ReplyAck;
        string queues = "1 (no MQ)";
        if ((offered & VhostUserProtocolFeatures.MQ) != 0)
        {
            try
            {
                queues = _handler.GetQueueNum().ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (NotSupportedException)
            {
                queues = "unknown";
            }
        }

        string hint = (offered & VhostUserProtocolFeatures.Config) == 0
            ? "; CONFIG is not offered, and front-ends of devices with a config space (QEMU's vhost-user-blk, -input, -gpu, -scsi) refuse a back-end without it"
            : string.Empty;
        VhostUserLogging.NegotiationAbandoned(_logger, _lastRequest.Value, VhostUserFeatureNames.Virtio(_handler.GetFeatures()), VhostUserFeatureNames.Protocol(offered), queues, hint);
    }

    /// <inheritdoc/>
    bool IVhostUserRequestServer.ContinuesAfter(VhostUserException e)
    {
        switch (_lastFailure)
        {
            case FailureOutcome.Reported:
                VhostUserLogging.ReportedFailure(_logger, e.Message);
                return true;
            case FailureOutcome.Unreported:
                VhostUserLogging.UnreportedFailure(_logger, e.Message);
                return true;
            default:
                VhostUserLogging.ConnectionFailed(_logger, e.GetType().Name, e.Message);
                return false;
        }
    }

    private static void CheckShape(FrontendRequest request, in VhostUserRequestRow<FrontendRequestHandler> row, VhostUserMessage message)
    {
        int body = message.Body.Length;
        if (row.Size >= 0 && body != row.Size)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{request}: payload is {body} bytes, expected {row.Size}");
        }

        int fds = message.Fds.Count;
        if (fds < row.MinFds || fds > row.MaxFds)
        {
            throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"{request}: carries {fds} fds, expected {(row.MinFds == row.MaxFds ? row.MinFds.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{row.MinFds} to {row.MaxFds}")}");
        }
    }

    private void CheckGates(FrontendRequest request, in VhostUserRequestRow<FrontendRequestHandler> row)
    {
        VhostUserProtocolFeatures needed = row.Gate;
        if (!_negotiation.HasProtocolFeatures(needed))
        {
            _handler.OnRequestNeedsProtocolFeature(request, needed & ~_negotiation.ProtocolFeatures);
            throw new VhostUserProtocolException(VhostUserViolation.InactiveFeature, $"{request} needs protocol feature {needed}, which was not negotiated");
        }

        switch (row.VirtioGate)
        {
            case VhostUserVirtioGate.ProtocolFeaturesOffered when (_handler.GetFeatures() & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) == 0:
                throw new VhostUserProtocolException(VhostUserViolation.InactiveFeature, $"{request} needs VHOST_USER_F_PROTOCOL_FEATURES, which this back-end does not offer");

            // QEMU up to 7.2 never acks VHOST_USER_F_PROTOCOL_FEATURES in SET_FEATURES for vhost-user-net
            // (the bit is not in its net feature list) yet sends SET_VRING_ENABLE once protocol features
            // were exchanged: accept it then, as DPDK and libvhost-user do.
            case VhostUserVirtioGate.ProtocolFeaturesAcked when !_negotiation.ProtocolFeaturesAcked && !_negotiation.ProtocolFeaturesSet:
                throw new VhostUserProtocolException(VhostUserViolation.InactiveFeature, $"{request} needs VHOST_USER_F_PROTOCOL_FEATURES acked by SET_FEATURES (or at least a SET_PROTOCOL_FEATURES)");
            case VhostUserVirtioGate.AccessPlatform when !_negotiation.HasFeatures((ulong)VirtioFeatures.AccessPlatform):
                throw new VhostUserProtocolException(VhostUserViolation.InactiveFeature, $"{request} needs VIRTIO_F_ACCESS_PLATFORM (IOMMU_PLATFORM) acked by SET_FEATURES");
        }
    }

    private static VhostUserProtocolException Invalid(FrontendRequest request, string what)
        => new(VhostUserViolation.InvalidMessage, $"{request}: {what}");

    private void HandlePostcopyAcknowledgement(in VhostUserHeader header, VhostUserMessage message)
    {
        ulong value = message.Read<VhostUserU64>().Value;
        if (value != 0)
        {
            throw new VhostUserPeerRefusedException(value, $"the front-end rejected the postcopy region list (value {value})");
        }

        VhostUserLogging.PostcopyAcknowledged(_logger);
        try
        {
            _handler.PostcopyMemoryAcknowledged();
        }
        catch (Exception e) when (e is VhostException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            ReportFailure(header, VhostUserFailureForm.Acknowledgement, postcopyMemory: false);
            throw new VhostUserRequestHandlerException($"PostcopyMemoryAcknowledged failed in the handler: {e.Message}", e);
        }

        if (header.NeedsReply)
        {
            _endpoint.Reply(header.Request, new VhostUserU64(0));
        }
    }

    private void SendU64(FrontendRequest request, ulong value, SafeHandle? fd = null)
    {
        var payload = new VhostUserU64(value);
        if (fd is null)
        {
            _endpoint.Reply((uint)request, in payload);
        }
        else
        {
            _endpoint.Reply((uint)request, in payload, [fd]);
        }
    }

    /// <summary>
    /// Tells the front-end a request failed in the row's failure form, where the protocol has a
    /// way to, and records whether serving can go on (<see cref="_lastFailure"/>).
    /// </summary>
    private void ReportFailure(in VhostUserHeader header, VhostUserFailureForm form, bool postcopyMemory)
    {
        var request = (FrontendRequest)header.Request;
        try
        {
            if (postcopyMemory)
            {
                // A postcopy front-end waits for the region list whatever NEED_REPLY says; a u64
                // 1 in its place is a failure it can detect (its size does not match the list).
                form = VhostUserFailureForm.U64Failure;
            }

            switch (form)
            {
                case VhostUserFailureForm.EmptyReply:
                    _endpoint.Reply(header.Request, ReadOnlySpan<byte>.Empty);
                    break;
                case VhostUserFailureForm.NoInflightRegion:
                    // mmap_size 0 and no fd: QEMU reads it as "no inflight region"; this front-end as a failure.
                    _endpoint.Reply(header.Request, default(VhostUserInflight));
                    break;
                case VhostUserFailureForm.DeviceStateError:
                    SendU64(request, VhostUserLimits.DeviceStateNoFdFlag | 1);
                    break;
                case VhostUserFailureForm.U64Failure:
                    SendU64(request, 1);
                    break;
                case VhostUserFailureForm.Acknowledgement when header.NeedsReply:
                    SendU64(request, 1);
                    break;
                case VhostUserFailureForm.Acknowledgement:
                    // Nothing to answer and nobody waiting: the request had no effect, serving goes on.
                    _lastFailure = FailureOutcome.Unreported;
                    return;
                default:
                    // The front-end waits for a reply this request has no failure form of.
                    _lastFailure = FailureOutcome.Fatal;
                    return;
            }

            _lastFailure = FailureOutcome.Reported;
        }
        catch (VhostUserException e)
        {
            VhostUserLogging.ReplyFailed(_logger, header.Request, e.Message);
            _lastFailure = FailureOutcome.Fatal;
        }
    }
}
