using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// Serves one vhost-user connection on the back-end side: reads each front-end message, checks
/// its header, payload size, fd count, feature gating and values, calls the matching
/// <see cref="IVhostUserBackendRequestHandler"/> method, and replies or acknowledges as the spec
/// says. Fds a handler does not take are closed after its call.
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
public sealed partial class VhostUserBackendRequestDispatcher : IDisposable, IVhostUserRequestServer
{
    private readonly VhostUserEndpoint _endpoint;
    private readonly IVhostUserBackendRequestHandler _handler;
    private readonly ILogger _logger;
    private VhostUserProtocolFeatures _ackedProtocolFeatures;
    private bool _protocolFeaturesSet;
    private ulong _ackedFeatures;
    private FailureOutcome _lastFailure;
    private bool _postcopyListening;
    private bool _postcopyAckPending;
    private bool _replySent;

    /// <summary>Creates a dispatcher over <paramref name="connection"/>, which it owns from now on.</summary>
    /// <param name="connection">The connection to a front-end.</param>
    /// <param name="handler">The device logic.</param>
    /// <param name="logger">Optional logger.</param>
    public VhostUserBackendRequestDispatcher(VhostUserConnection connection, IVhostUserBackendRequestHandler handler, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(handler);
        _endpoint = new VhostUserEndpoint(connection);
        _handler = handler;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The connection. Sending on it directly puts the stream out of step; use it to poll or shut down.</summary>
    public VhostUserConnection Connection => _endpoint.Connection;

    /// <summary>The protocol features the front-end acked (SET_PROTOCOL_FEATURES).</summary>
    public VhostUserProtocolFeatures AckedProtocolFeatures => _ackedProtocolFeatures;

    /// <summary>The virtio features the front-end acked (SET_FEATURES).</summary>
    public ulong AckedFeatures => _ackedFeatures;

    /// <summary>
    /// Whether POSTCOPY_LISTEN was handled and POSTCOPY_END not yet: SET_MEM_TABLE and ADD_MEM_REG
    /// are then answered with the back-end's mapping addresses (see
    /// <see cref="IVhostUserBackendRequestHandler.TryGetPostcopyMappingAddress"/>).
    /// </summary>
    public bool IsPostcopyListening => _postcopyListening;

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

    /// <summary>Reads and handles one request.</summary>
    /// <param name="timeoutMilliseconds">How long to wait for the request; -1 waits forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="VhostUserException">
    /// The request was malformed, gated, or failed in the handler (reason
    /// <see cref="VhostUserError.RequestHandlerError"/> or the handler's own), or the connection failed.
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
            throw new VhostUserException(VhostUserError.InvalidHeader, $"request {header.Request} carries the reply flag");
        }

        var request = (FrontendRequest)header.Request;
        if (!Enum.IsDefined(request))
        {
            // A newer front-end: it only sends a new request after negotiating the feature that
            // gates it, which this back-end did not offer. The body was read and the fds are
            // closed with the message; a NEED_REPLY gets a failed acknowledgement.
            if (header.NeedsReply)
            {
                _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(1));
            }

            VhostUserLogging.UnknownRequest(_logger, header.Request, header.Size, message.Fds.Count, header.NeedsReply ? "answered with a failed acknowledgement" : "ignored");
            return;
        }

        if (_postcopyAckPending && IsPostcopyAcknowledgement(request, message))
        {
            HandlePostcopyAcknowledgement(header, message);
            return;
        }

        bool ownReply = HasOwnReply(request);
        bool postcopyMemory = _postcopyListening && request is FrontendRequest.SetMemTable or FrontendRequest.AddMemReg;
        try
        {
            ValidateShape(request, message);
            CheckGate(request);
            Dispatch(request, message);
        }
        catch (Exception e) when (e is VhostException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            ReportFailure(header, ownReply, postcopyMemory);
            if (e is VhostUserException)
            {
                throw;
            }

            throw new VhostUserException(VhostUserError.RequestHandlerError, $"{request} failed in the handler: {e.Message}", e);
        }

        // A postcopy region list is the reply of its own: no extra acknowledgement (spec: REPLY_ACK).
        if (!ownReply && !_replySent && header.NeedsReply)
        {
            SendU64(request, 0);
        }
    }

    /// <summary>Disposes the connection.</summary>
    public void Dispose() => _endpoint.Dispose();

    /// <inheritdoc/>
    void IVhostUserRequestServer.OnPeerClosed() => VhostUserLogging.FrontendDisconnected(_logger);

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
                VhostUserLogging.ConnectionFailed(_logger, e.Reason, e.Message);
                return false;
        }
    }

    /// <summary>
    /// The front-end's answer to a postcopy region list: QEMU sends the request code it used
    /// (SET_MEM_TABLE, or ADD_MEM_REG / REM_MEM_REG after a batch of slot changes) with a u64 0.
    /// No real request of those codes is 8 bytes without fds, so the shape identifies it.
    /// </summary>
    private static bool IsPostcopyAcknowledgement(FrontendRequest request, VhostUserMessage message)
        => request is FrontendRequest.SetMemTable or FrontendRequest.AddMemReg or FrontendRequest.RemMemReg
           && message.Body.Length == sizeof(ulong) && message.Fds.Count == 0;

    private void HandlePostcopyAcknowledgement(in VhostUserHeader header, VhostUserMessage message)
    {
        _postcopyAckPending = false;
        ulong value = message.Read<VhostUserU64>().Value;
        if (value != 0)
        {
            throw new VhostUserException(value, $"the front-end rejected the postcopy region list (value {value})");
        }

        VhostUserLogging.PostcopyAcknowledged(_logger);
        try
        {
            _handler.PostcopyMemoryAcknowledged();
        }
        catch (Exception e) when (e is VhostException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            ReportFailure(header, hasOwnReply: false, postcopyMemory: false);
            throw new VhostUserException(VhostUserError.RequestHandlerError, $"PostcopyMemoryAcknowledged failed in the handler: {e.Message}", e);
        }

        if (header.NeedsReply)
        {
            _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(0));
        }
    }

    /// <summary>Postcopy: answers SET_MEM_TABLE / ADD_MEM_REG with the regions carrying the handler's mapping addresses.</summary>
    /// <returns>Whether the region list was sent.</returns>
    private bool SendPostcopyRegions(FrontendRequest request, ReadOnlySpan<byte> body, int prefix)
    {
        if (!_postcopyListening)
        {
            return false;
        }

        Span<byte> reply = stackalloc byte[VhostUserLimits.MemoryHeaderSize + (VhostUserLimits.MaxMemTableRegions * VhostUserLimits.MemoryRegionSize)];
        reply = reply[..body.Length];
        body.CopyTo(reply);
        Span<VhostUserMemoryRegion> regions = MemoryMarshal.Cast<byte, VhostUserMemoryRegion>(reply[prefix..]);
        int provided = 0;
        for (int i = 0; i < regions.Length; i++)
        {
            if (_handler.TryGetPostcopyMappingAddress(regions[i], out ulong address))
            {
                regions[i].UserAddress = address;
                provided++;
            }
        }

        if (provided == 0)
        {
            return false;
        }

        if (provided != regions.Length)
        {
            throw new InvalidOperationException($"{request}: the handler gave postcopy mapping addresses for {provided} of {regions.Length} regions");
        }

        _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, reply);
        _replySent = true;
        _postcopyAckPending = true;
        VhostUserLogging.PostcopyRegionsSent(_logger, request, regions.Length);
        return true;
    }

    private static bool HasOwnReply(FrontendRequest request) => request is FrontendRequest.GetFeatures
        or FrontendRequest.GetProtocolFeatures or FrontendRequest.GetQueueNum or FrontendRequest.GetVringBase
        or FrontendRequest.SetLogBase or FrontendRequest.IotlbMsg or FrontendRequest.GetConfig
        or FrontendRequest.CreateCryptoSession or FrontendRequest.PostcopyAdvise or FrontendRequest.PostcopyEnd
        or FrontendRequest.GetInflightFd or FrontendRequest.GetMaxMemSlots or FrontendRequest.GetStatus
        or FrontendRequest.GetSharedObject or FrontendRequest.SetDeviceStateFd or FrontendRequest.CheckDeviceState
        or FrontendRequest.GetShmemConfig;

    /// <summary>The payload size (-1 = checked by the handler method) and fd count range of each request.</summary>
    private static (int Size, int MinFds, int MaxFds) Shape(FrontendRequest request) => request switch
    {
        FrontendRequest.GetFeatures or FrontendRequest.SetOwner or FrontendRequest.ResetOwner
            or FrontendRequest.GetProtocolFeatures or FrontendRequest.GetQueueNum or FrontendRequest.PostcopyAdvise
            or FrontendRequest.PostcopyListen or FrontendRequest.PostcopyEnd or FrontendRequest.ResetDevice
            or FrontendRequest.GetMaxMemSlots or FrontendRequest.GetStatus or FrontendRequest.CheckDeviceState
            or FrontendRequest.GetShmemConfig => (0, 0, 0),
        FrontendRequest.SetFeatures or FrontendRequest.SetProtocolFeatures or FrontendRequest.SendRarp
            or FrontendRequest.NetSetMtu or FrontendRequest.CloseCryptoSession or FrontendRequest.SetStatus => (8, 0, 0),
        FrontendRequest.SetVringNum or FrontendRequest.SetVringBase or FrontendRequest.GetVringBase
            or FrontendRequest.SetVringEnable or FrontendRequest.SetVringEndian or FrontendRequest.VringKick => (8, 0, 0),
        FrontendRequest.SetVringKick or FrontendRequest.SetVringCall or FrontendRequest.SetVringErr => (8, 0, 1),
        FrontendRequest.SetMemTable => (-1, 1, VhostUserLimits.MaxMemTableRegions),
        FrontendRequest.SetLogBase => (16, 1, 1),
        FrontendRequest.SetLogFd or FrontendRequest.SetBackendReqFd or FrontendRequest.GpuSetSocket => (0, 1, 1),
        FrontendRequest.SetVringAddr => (40, 0, 0),
        FrontendRequest.IotlbMsg => (32, 0, 0),
        FrontendRequest.GetConfig or FrontendRequest.SetConfig or FrontendRequest.CreateCryptoSession => (-1, 0, 0),
        FrontendRequest.GetInflightFd => (24, 0, 0),
        FrontendRequest.SetInflightFd => (24, 1, 1),
        FrontendRequest.AddMemReg => (40, 1, 1),

        // The spec lets back-ends accept (and close) an fd on REM_MEM_REG for older front-ends.
        FrontendRequest.RemMemReg => (40, 0, 1),
        FrontendRequest.GetSharedObject => (16, 0, 0),
        FrontendRequest.SetDeviceStateFd => (8, 1, 1),
        _ => (-1, 0, 0),
    };

    private static void ValidateShape(FrontendRequest request, VhostUserMessage message)
    {
        (int size, int minFds, int maxFds) = Shape(request);
        int body = message.Body.Length;
        if (size >= 0 && body != size)
        {
            throw new VhostUserException(VhostUserError.InvalidMessage, $"{request}: payload is {body} bytes, expected {size}");
        }

        int fds = message.Fds.Count;
        if (fds < minFds || fds > maxFds)
        {
            throw new VhostUserException(VhostUserError.IncorrectFds, $"{request}: carries {fds} fds, expected {(minFds == maxFds ? minFds.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{minFds} to {maxFds}")}");
        }
    }

    private static VhostUserException Invalid(FrontendRequest request, string what)
        => new(VhostUserError.InvalidMessage, $"{request}: {what}");

    private void CheckGate(FrontendRequest request)
    {
        VhostUserProtocolFeatures needed = request switch
        {
            FrontendRequest.SetLogBase => VhostUserProtocolFeatures.LogShmFd,
            FrontendRequest.GetQueueNum => VhostUserProtocolFeatures.MQ,
            FrontendRequest.SendRarp => VhostUserProtocolFeatures.Rarp,
            FrontendRequest.NetSetMtu => VhostUserProtocolFeatures.NetMtu,
            FrontendRequest.SetBackendReqFd => VhostUserProtocolFeatures.BackendRequest,
            FrontendRequest.SetVringEndian => VhostUserProtocolFeatures.CrossEndian,
            FrontendRequest.GetConfig or FrontendRequest.SetConfig => VhostUserProtocolFeatures.Config,
            FrontendRequest.CreateCryptoSession or FrontendRequest.CloseCryptoSession => VhostUserProtocolFeatures.CryptoSession,
            FrontendRequest.PostcopyAdvise or FrontendRequest.PostcopyListen or FrontendRequest.PostcopyEnd => VhostUserProtocolFeatures.PageFault,
            FrontendRequest.GetInflightFd or FrontendRequest.SetInflightFd => VhostUserProtocolFeatures.InflightShmFd,
            FrontendRequest.ResetDevice => VhostUserProtocolFeatures.ResetDevice,
            FrontendRequest.VringKick => VhostUserProtocolFeatures.InbandNotifications,
            FrontendRequest.GetMaxMemSlots or FrontendRequest.AddMemReg or FrontendRequest.RemMemReg => VhostUserProtocolFeatures.ConfigureMemorySlots,
            FrontendRequest.SetStatus or FrontendRequest.GetStatus => VhostUserProtocolFeatures.Status,
            FrontendRequest.GetSharedObject => VhostUserProtocolFeatures.SharedObject,
            FrontendRequest.SetDeviceStateFd or FrontendRequest.CheckDeviceState => VhostUserProtocolFeatures.DeviceState,
            FrontendRequest.GetShmemConfig => VhostUserProtocolFeatures.Shmem,
            _ => VhostUserProtocolFeatures.None,
        };
        if ((_ackedProtocolFeatures & needed) != needed)
        {
            throw new VhostUserException(VhostUserError.InactiveFeature, $"{request} needs protocol feature {needed}, which was not negotiated");
        }

        switch (request)
        {
            case FrontendRequest.GetProtocolFeatures or FrontendRequest.SetProtocolFeatures
                when (_handler.GetFeatures() & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) == 0:
                throw new VhostUserException(VhostUserError.InactiveFeature, $"{request} needs VHOST_USER_F_PROTOCOL_FEATURES, which this back-end does not offer");
            // QEMU up to 7.2 never acks VHOST_USER_F_PROTOCOL_FEATURES in SET_FEATURES for vhost-user-net
            // (the bit is not in its net feature list) yet sends SET_VRING_ENABLE once protocol features
            // were exchanged: accept it then, as DPDK and libvhost-user do.
            case FrontendRequest.SetVringEnable when (_ackedFeatures & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) == 0 && !_protocolFeaturesSet:
                throw new VhostUserException(VhostUserError.InactiveFeature, "SetVringEnable needs VHOST_USER_F_PROTOCOL_FEATURES acked by SET_FEATURES (or at least a SET_PROTOCOL_FEATURES)");
            case FrontendRequest.IotlbMsg when (_ackedFeatures & (ulong)VhostUserVirtioFeatures.AccessPlatform) == 0:
                throw new VhostUserException(VhostUserError.InactiveFeature, "IotlbMsg needs VIRTIO_F_ACCESS_PLATFORM (IOMMU_PLATFORM) acked by SET_FEATURES");
        }
    }

    private void Dispatch(FrontendRequest request, VhostUserMessage message)
    {
        ReadOnlySpan<byte> body = message.Body;
        ReceivedFds fds = message.Fds;
        switch (request)
        {
            case FrontendRequest.GetFeatures:
                SendU64(request, _handler.GetFeatures());
                break;
            case FrontendRequest.SetFeatures:
                {
                    ulong features = message.Read<VhostUserU64>().Value;
                    _handler.SetFeatures(features);
                    _ackedFeatures = features;
                    VhostUserLogging.FeaturesAcked(_logger, features);
                    break;
                }

            case FrontendRequest.SetOwner:
                _handler.SetOwner();
                break;
            case FrontendRequest.ResetOwner:
                _handler.ResetOwner();
                break;
            case FrontendRequest.GetProtocolFeatures:
                SendU64(request, (ulong)(_handler.GetProtocolFeatures() | VhostUserProtocolFeatures.ReplyAck));
                break;
            case FrontendRequest.SetProtocolFeatures:
                HandleSetProtocolFeatures(message.Read<VhostUserU64>().Value);
                break;
            case FrontendRequest.SetMemTable:
                HandleSetMemTable(body, fds);
                SendPostcopyRegions(request, body, VhostUserLimits.MemoryHeaderSize);
                break;
            case FrontendRequest.SetLogBase:
                {
                    VhostUserLog log = message.Read<VhostUserLog>();
                    if (!log.IsValid())
                    {
                        throw Invalid(request, "invalid log size or offset");
                    }

                    _handler.SetLogBase(log, fds);

                    // Echo the log description: QEMU reads any reply, rust-vmm front-ends expect these 16 bytes.
                    _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, in log);
                    break;
                }

            case FrontendRequest.SetLogFd:
                _handler.SetLogFd(fds);
                break;
            case FrontendRequest.SetVringNum:
                {
                    VhostUserVringState state = ReadVringState(request, message);
                    if (state.Num is 0 or > VhostUserLimits.MaxQueueSize)
                    {
                        throw Invalid(request, $"queue size {state.Num} is outside 1..{VhostUserLimits.MaxQueueSize}");
                    }

                    _handler.SetVringNum((int)state.Index, state.Num);
                    break;
                }

            case FrontendRequest.SetVringAddr:
                {
                    VhostUserVringAddress address = message.Read<VhostUserVringAddress>();
                    if (!address.IsValid())
                    {
                        throw Invalid(request, "unknown flags, index out of range, or misaligned ring address");
                    }

                    _handler.SetVringAddress(address);
                    break;
                }

            case FrontendRequest.SetVringBase:
                {
                    VhostUserVringState state = ReadVringState(request, message);

                    // Split rings carry only the 16-bit next available index; packed rings use all 32 bits.
                    if ((_ackedFeatures & (ulong)VhostUserVirtioFeatures.RingPacked) == 0 && state.Num > ushort.MaxValue)
                    {
                        throw Invalid(request, $"base 0x{state.Num:x} does not fit the 16-bit index of a split ring");
                    }

                    _handler.SetVringBase((int)state.Index, state.Num);
                    break;
                }

            case FrontendRequest.GetVringBase:
                {
                    VhostUserVringState state = ReadVringState(request, message);
                    ToleratedIfNonZero(request, state.Num, "num");
                    uint value = _handler.GetVringBase((int)state.Index);
                    _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, new VhostUserVringState(state.Index, value));
                    break;
                }

            case FrontendRequest.SetVringKick:
            case FrontendRequest.SetVringCall:
            case FrontendRequest.SetVringErr:
                {
                    ulong word = message.Read<VhostUserU64>().Value;
                    ToleratedIfNonZero(request, word & ~(VhostUserLimits.VringIndexMask | VhostUserLimits.VringNoFdFlag), "reserved bits");

                    bool noFd = (word & VhostUserLimits.VringNoFdFlag) != 0;
                    if (noFd != (fds.Count == 0))
                    {
                        throw new VhostUserException(VhostUserError.IncorrectFds, noFd ? $"{request}: the no-fd flag is set but an fd is attached" : $"{request}: no fd attached and the no-fd flag is clear");
                    }

                    // The one check of a vring kick/call/err fd: a pipe, file or socket there would
                    // break epoll or the signalling later, so a handler only ever gets an eventfd.
                    SafeFileHandle? fd = fds.Peek(0);
                    if (fd is not null && !Fd.IsEventFd(fd))
                    {
                        throw new VhostUserException(VhostUserError.InvalidMessage, $"{request}: the fd is not an eventfd");
                    }

                    int index = (int)(word & VhostUserLimits.VringIndexMask);
                    if (request == FrontendRequest.SetVringKick)
                    {
                        _handler.SetVringKick(index, fds);
                    }
                    else if (request == FrontendRequest.SetVringCall)
                    {
                        _handler.SetVringCall(index, fds);
                    }
                    else
                    {
                        _handler.SetVringError(index, fds);
                    }

                    break;
                }

            case FrontendRequest.GetQueueNum:
                SendU64(request, _handler.GetQueueNum());
                break;
            case FrontendRequest.SetVringEnable:
                {
                    VhostUserVringState state = ReadVringState(request, message);
                    if (state.Num > 1)
                    {
                        throw Invalid(request, $"enable value {state.Num} is neither 0 nor 1");
                    }

                    _handler.SetVringEnable((int)state.Index, state.Num == 1);
                    break;
                }

            case FrontendRequest.SendRarp:
                _handler.SendRarp(body[..6]);
                break;
            case FrontendRequest.NetSetMtu:
                _handler.NetSetMtu(message.Read<VhostUserU64>().Value);
                break;
            case FrontendRequest.SetBackendReqFd:
                {
                    var channel = new VhostUserBackendChannel(new VhostUserConnection(fds.Take(0)), _ackedProtocolFeatures, _ackedFeatures, _logger);
                    try
                    {
                        _handler.SetBackendRequestFd(channel);
                    }
                    catch
                    {
                        channel.Dispose();
                        throw;
                    }

                    break;
                }

            case FrontendRequest.IotlbMsg:
                {
                    VhostUserIotlbMessage iotlb = message.Read<VhostUserIotlbMessage>();
                    if (!iotlb.IsValid())
                    {
                        throw Invalid(request, "unknown type or permission, or an invalid range");
                    }

                    _handler.IotlbMessage(iotlb);
                    SendU64(request, 0);
                    break;
                }

            case FrontendRequest.SetVringEndian:
                {
                    VhostUserVringState state = ReadVringState(request, message);
                    var endianness = (VhostUserVringEndianness)state.Num;
                    if (!Enum.IsDefined(endianness))
                    {
                        throw Invalid(request, $"unknown endianness {state.Num}");
                    }

                    _handler.SetVringEndianness((int)state.Index, endianness);
                    break;
                }

            case FrontendRequest.GetConfig:
                HandleGetConfig(body);
                break;
            case FrontendRequest.SetConfig:
                {
                    VhostUserConfigHeader config = ReadConfig(request, body);
                    _handler.SetConfig(config.Offset, config.Flags, body.Slice(VhostUserLimits.ConfigHeaderSize, (int)config.Size));
                    break;
                }

            case FrontendRequest.CreateCryptoSession:
                {
                    if (body.IsEmpty)
                    {
                        throw Invalid(request, "empty session description");
                    }

                    byte[] reply = _handler.CreateCryptoSession(body);
                    _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, reply);
                    break;
                }

            case FrontendRequest.CloseCryptoSession:
                _handler.CloseCryptoSession(message.Read<VhostUserU64>().Value);
                break;
            case FrontendRequest.PostcopyAdvise:
                {
                    using SafeFileHandle fd = _handler.PostcopyAdvise() ?? throw new InvalidOperationException("PostcopyAdvise returned no fd");

                    // The reply is the userfaultfd alone: QEMU rejects a reply with a payload.
                    _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, ReadOnlySpan<byte>.Empty, [fd]);
                    break;
                }

            case FrontendRequest.PostcopyListen:
                _handler.PostcopyListen();
                _postcopyListening = true;
                break;
            case FrontendRequest.PostcopyEnd:
                _postcopyListening = false;
                _postcopyAckPending = false;
                _handler.PostcopyEnd();
                SendU64(request, 0);
                break;
            case FrontendRequest.GetInflightFd:
                {
                    VhostUserInflight inflight = message.Read<VhostUserInflight>();
                    if (!inflight.IsValid())
                    {
                        throw Invalid(request, "zero queues or a zero or oversized queue size");
                    }

                    using SafeFileHandle? fd = _handler.GetInflightFd(inflight, out VhostUserInflight reply);
                    if (reply.MmapSize == 0)
                    {
                        // No inflight region (QEMU carries on without one): no fd goes with it.
                        _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, in reply);
                        break;
                    }

                    if (fd is null)
                    {
                        throw new InvalidOperationException("GetInflightFd returned a region but no fd");
                    }

                    _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, in reply, [fd]);
                    break;
                }

            case FrontendRequest.SetInflightFd:
                {
                    VhostUserInflight inflight = message.Read<VhostUserInflight>();
                    if (!inflight.IsValid() || inflight.MmapSize == 0)
                    {
                        throw Invalid(request, "zero queues, zero queue size or an empty region");
                    }

                    _handler.SetInflightFd(inflight, fds);
                    break;
                }

            case FrontendRequest.GpuSetSocket:
                _handler.GpuSetSocket(fds);
                break;
            case FrontendRequest.ResetDevice:
                _handler.ResetDevice();
                break;
            case FrontendRequest.VringKick:
                {
                    VhostUserVringState state = ReadVringState(request, message);
                    ToleratedIfNonZero(request, state.Num, "num");
                    _handler.VringKick((int)state.Index);
                    break;
                }
            case FrontendRequest.GetMaxMemSlots:
                SendU64(request, _handler.GetMaxMemorySlots());
                break;
            case FrontendRequest.AddMemReg:
            case FrontendRequest.RemMemReg:
                {
                    VhostUserSingleMemoryRegion region = message.Read<VhostUserSingleMemoryRegion>();
                    if (!region.IsValid())
                    {
                        throw Invalid(request, "zero-sized or wrapping region");
                    }

                    if (request == FrontendRequest.AddMemReg)
                    {
                        _handler.AddMemoryRegion(region.Region, fds);
                        SendPostcopyRegions(request, body, sizeof(ulong));
                    }
                    else
                    {
                        _handler.RemoveMemoryRegion(region.Region);
                    }

                    break;
                }

            case FrontendRequest.SetStatus:
                {
                    ulong status = message.Read<VhostUserU64>().Value;
                    if (status > byte.MaxValue)
                    {
                        throw Invalid(request, $"status 0x{status:x} does not fit the status byte");
                    }

                    _handler.SetStatus((byte)status);
                    break;
                }

            case FrontendRequest.GetStatus:
                SendU64(request, _handler.GetStatus());
                break;
            case FrontendRequest.GetSharedObject:
                {
                    VhostUserSharedObject shared = message.Read<VhostUserSharedObject>();
                    if (!shared.IsValid())
                    {
                        throw Invalid(request, "nil or max UUID");
                    }

                    using SafeFileHandle? fd = _handler.GetSharedObject(shared.Uuid.ToGuid());
                    if (fd is null)
                    {
                        SendU64(request, 1);
                    }
                    else
                    {
                        SendU64(request, 0, fd);
                    }

                    break;
                }

            case FrontendRequest.SetDeviceStateFd:
                {
                    VhostUserDeviceStateTransfer transfer = message.Read<VhostUserDeviceStateTransfer>();
                    if (!transfer.IsValid())
                    {
                        throw Invalid(request, $"unknown direction {(uint)transfer.Direction} or phase {(uint)transfer.Phase}");
                    }

                    using SafeFileHandle? fd = _handler.SetDeviceStateFd(transfer.Direction, transfer.Phase, fds);
                    if (fd is null)
                    {
                        SendU64(request, VhostUserLimits.DeviceStateNoFdFlag);
                    }
                    else
                    {
                        SendU64(request, 0, fd);
                    }

                    break;
                }

            case FrontendRequest.CheckDeviceState:
                _handler.CheckDeviceState();
                SendU64(request, 0);
                break;
            case FrontendRequest.GetShmemConfig:
                {
                    VhostUserShmemConfig config = _handler.GetShmemConfig();
                    if (!config.IsValid() || !config.HasPageSizedRegions(Environment.SystemPageSize))
                    {
                        throw new InvalidOperationException("the handler returned a shared memory configuration whose region count does not match its sizes, or a size that is not a multiple of the page size");
                    }

                    _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, in config);
                    break;
                }
        }
    }

    /// <summary>An unused field that should be zero and is not: no meaning is read into it; logged.</summary>
    private void ToleratedIfNonZero(FrontendRequest request, ulong value, string field)
    {
        if (value != 0)
        {
            VhostUserLogging.Tolerated(_logger, request, $"{field} 0x{value:x} in a field the spec reserves (should be 0)");
        }
    }

    /// <summary>Reads a ring state and checks its index (below 32768, so handlers get it as an <see cref="int"/>).</summary>
    private static VhostUserVringState ReadVringState(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = message.Read<VhostUserVringState>();
        if (!state.IsValid())
        {
            throw Invalid(request, $"ring index {state.Index} is out of range");
        }

        return state;
    }

    private static VhostUserConfigHeader ReadConfig(FrontendRequest request, ReadOnlySpan<byte> body)
    {
        if (body.Length < VhostUserLimits.ConfigHeaderSize)
        {
            throw Invalid(request, $"payload of {body.Length} bytes is shorter than the config header");
        }

        VhostUserConfigHeader config = MemoryMarshal.Read<VhostUserConfigHeader>(body);
        if (!config.IsValid())
        {
            throw Invalid(request, $"config offset {config.Offset} size {config.Size} flags 0x{(uint)config.Flags:x} is invalid");
        }

        if (body.Length != VhostUserLimits.ConfigHeaderSize + config.Size)
        {
            throw Invalid(request, $"payload is {body.Length} bytes, expected {VhostUserLimits.ConfigHeaderSize + config.Size}");
        }

        return config;
    }

    private void HandleSetProtocolFeatures(ulong value)
    {
        var features = (VhostUserProtocolFeatures)value;
        VhostUserProtocolFeatures offered = _handler.GetProtocolFeatures() | VhostUserProtocolFeatures.ReplyAck;
        if ((features & ~offered) != 0)
        {
            throw Invalid(FrontendRequest.SetProtocolFeatures, $"acks bits 0x{(ulong)(features & ~offered):x} that were not offered");
        }

        _handler.SetProtocolFeatures(features);
        _ackedProtocolFeatures = features;
        _protocolFeaturesSet = true;
        VhostUserLogging.ProtocolFeaturesAcked(_logger, features);
    }

    private void HandleSetMemTable(ReadOnlySpan<byte> body, ReceivedFds fds)
    {
        int headerSize = VhostUserLimits.MemoryHeaderSize;
        if (body.Length < headerSize)
        {
            throw Invalid(FrontendRequest.SetMemTable, $"payload of {body.Length} bytes is shorter than the table header");
        }

        VhostUserMemoryHeader table = MemoryMarshal.Read<VhostUserMemoryHeader>(body);
        if (table.RegionCount is 0 or > VhostUserLimits.MaxMemTableRegions)
        {
            throw Invalid(FrontendRequest.SetMemTable, $"{table.RegionCount} regions (1 to {VhostUserLimits.MaxMemTableRegions} allowed)");
        }

        ToleratedIfNonZero(FrontendRequest.SetMemTable, table.Padding, "padding");

        int expected = headerSize + ((int)table.RegionCount * VhostUserLimits.MemoryRegionSize);
        if (body.Length != expected)
        {
            throw Invalid(FrontendRequest.SetMemTable, $"payload is {body.Length} bytes, expected {expected} for {table.RegionCount} regions");
        }

        if (fds.Count != table.RegionCount)
        {
            throw new VhostUserException(VhostUserError.IncorrectFds, $"SetMemTable: {table.RegionCount} regions but {fds.Count} fds");
        }

        ReadOnlySpan<VhostUserMemoryRegion> regions = MemoryMarshal.Cast<byte, VhostUserMemoryRegion>(body[headerSize..]);
        foreach (VhostUserMemoryRegion region in regions)
        {
            if (!region.IsValid())
            {
                throw Invalid(FrontendRequest.SetMemTable, $"region at 0x{region.GuestPhysicalAddress:x} is empty or wraps");
            }
        }

        _handler.SetMemoryTable(regions, fds);
    }

    private void HandleGetConfig(ReadOnlySpan<byte> body)
    {
        VhostUserConfigHeader config = ReadConfig(FrontendRequest.GetConfig, body);
        Span<byte> reply = stackalloc byte[VhostUserLimits.ConfigHeaderSize + VhostUserLimits.MaxConfigSize];
        reply = reply[..(VhostUserLimits.ConfigHeaderSize + (int)config.Size)];
        reply.Clear();
        MemoryMarshal.Write(reply, in config);
        _handler.GetConfig(config.Offset, config.Flags, reply[VhostUserLimits.ConfigHeaderSize..]);
        _endpoint.Send((uint)FrontendRequest.GetConfig, VhostUserHeaderFlags.Reply, reply);
    }

    private void SendU64(FrontendRequest request, ulong value, SafeHandle? fd = null)
    {
        var payload = new VhostUserU64(value);
        if (fd is null)
        {
            _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, in payload);
        }
        else
        {
            _endpoint.Send((uint)request, VhostUserHeaderFlags.Reply, in payload, [fd]);
        }
    }

    /// <summary>
    /// Tells the front-end a request failed, where the protocol has a way to, and records whether
    /// serving can go on (<see cref="_lastFailure"/>).
    /// </summary>
    private void ReportFailure(in VhostUserHeader header, bool hasOwnReply, bool postcopyMemory)
    {
        var request = (FrontendRequest)header.Request;
        try
        {
            if (postcopyMemory)
            {
                // A postcopy front-end waits for the region list whatever NEED_REPLY says; a u64
                // 1 in its place is a failure it can detect (its size does not match the list).
                SendU64(request, 1);
            }
            else if (hasOwnReply)
            {
                switch (request)
                {
                    case FrontendRequest.GetConfig or FrontendRequest.PostcopyAdvise:
                        // GET_CONFIG: a size-0 reply is the spec's error. POSTCOPY_ADVISE: a reply without the userfaultfd.
                        _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, ReadOnlySpan<byte>.Empty);
                        break;
                    case FrontendRequest.GetInflightFd:
                        // mmap_size 0 and no fd: QEMU reads it as "no inflight region"; this front-end as a failure.
                        _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, default(VhostUserInflight));
                        break;
                    case FrontendRequest.SetDeviceStateFd:
                        SendU64(request, VhostUserLimits.DeviceStateNoFdFlag | 1);
                        break;
                    case FrontendRequest.CheckDeviceState or FrontendRequest.PostcopyEnd or FrontendRequest.IotlbMsg or FrontendRequest.GetSharedObject:
                        SendU64(request, 1);
                        break;
                    default:
                        // The front-end waits for a reply this request has no failure form of.
                        _lastFailure = FailureOutcome.Fatal;
                        return;
                }
            }
            else if (header.NeedsReply)
            {
                _endpoint.Send(header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(1));
            }
            else
            {
                // Nothing to answer and nobody waiting: the request had no effect, serving goes on.
                _lastFailure = FailureOutcome.Unreported;
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
}
