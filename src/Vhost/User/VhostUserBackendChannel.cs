using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.User;

/// <summary>
/// The back-end's sender on the back-end channel (the socket from SET_BACKEND_REQ_FD): config
/// change, IOTLB miss, host notifiers, in-band call/err, shared objects, shared memory maps.
/// Each request is checked against the negotiated features before it is sent; with REPLY_ACK
/// negotiated every request asks for an acknowledgement and waits for it (at most
/// <see cref="ReplyTimeout"/>); a non-zero acknowledgement is a <see cref="VhostUserPeerRefusedException"/>.
/// The in-band notifications (<see cref="SendVringCall"/>, <see cref="SendVringError"/>) never ask
/// for one: they are sent from a daemon's worker, which must not wait for a front-end that may be
/// waiting for the daemon itself (a GET_VRING_BASE that pauses that worker).
/// </summary>
/// <remarks>Thread-safe: one request is in flight at a time; a notification is sent between requests, without waiting for a request's reply. After a transport error or a bad reply the channel is failed and every later call throws.</remarks>
public sealed class VhostUserBackendChannel : IDisposable
{
    private readonly VhostUserEndpoint _endpoint;
    private readonly VhostUserNegotiation _negotiation;
    private readonly ILogger _logger;

    /// <summary>Creates the sender over <paramref name="connection"/>, which it owns from now on, with fixed features (tests).</summary>
    /// <param name="connection">The back-end channel socket.</param>
    /// <param name="protocolFeatures">The protocol features negotiated on the main connection.</param>
    /// <param name="features">The virtio features acked on the main connection.</param>
    internal VhostUserBackendChannel(VhostUserConnection connection, VhostUserProtocolFeatures protocolFeatures, ulong features = 0)
        : this(connection, Fixed(protocolFeatures, features), null)
    {
    }

    /// <summary>Creates the sender over <paramref name="connection"/>, which it owns from now on, logging to <paramref name="logger"/>.</summary>
    /// <param name="connection">The back-end channel socket.</param>
    /// <param name="negotiation">The main connection's negotiated features, read at each send (a RESET_DEVICE and a new SET_FEATURES change them).</param>
    /// <param name="logger">The logger (<see langword="null"/> = none).</param>
    internal VhostUserBackendChannel(VhostUserConnection connection, VhostUserNegotiation negotiation, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(negotiation);
        _endpoint = new VhostUserEndpoint(connection);
        _negotiation = negotiation;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The negotiated protocol features that gate requests.</summary>
    public VhostUserProtocolFeatures ProtocolFeatures => _negotiation.ProtocolFeatures;

    /// <summary>The acked virtio features (ACCESS_PLATFORM gates IOTLB messages).</summary>
    public ulong Features => _negotiation.Features;

    /// <summary>How long to wait for a reply. Default 5 s.</summary>
    public TimeSpan ReplyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The channel's connection. Sending on it directly while this sender is in use puts the stream out of step.</summary>
    internal VhostUserConnection Connection => _endpoint.Connection;

    /// <summary>CONFIG_CHANGE_MSG: tell the front-end the config space changed (needs CONFIG).</summary>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void SendConfigChange()
        => Request(BackendRequest.ConfigChangeMsg, ReadOnlySpan<byte>.Empty, null);

    /// <summary>IOTLB_MSG: report an IOTLB miss or access failure (needs ACCESS_PLATFORM).</summary>
    /// <param name="message">The message (type <see cref="VhostIotlbType.Miss"/> or <see cref="VhostIotlbType.AccessFail"/>).</param>
    /// <exception cref="ArgumentException">Invalid message.</exception>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void SendIotlbMessage(in VhostUserIotlbMessage message)
    {
        if ((Features & (ulong)VirtioFeatures.AccessPlatform) == 0)
        {
            throw new InvalidOperationException("IotlbMsg needs VIRTIO_F_ACCESS_PLATFORM, which was not acked");
        }

        if (!message.IsValid())
        {
            throw new ArgumentException("IotlbMsg: invalid IOTLB message");
        }

        Request(BackendRequest.IotlbMsg, Bytes(in message), null);
    }

    /// <summary>
    /// IOTLB_MSG of type MISS, as a notification: no NEED_REPLY even when REPLY_ACK is negotiated,
    /// and no wait for another request's reply. A daemon's worker sends it and then waits for the
    /// IOTLB update on the main connection, which the front-end sends before it would acknowledge
    /// the miss (QEMU); waiting for the acknowledgement instead would tie the worker to a front-end
    /// that may itself be waiting for the daemon (DPDK sends misses without NEED_REPLY too).
    /// </summary>
    /// <param name="iova">The IOVA that has no translation.</param>
    /// <param name="permission">The access wanted (QEMU reads anything but read-only as a write).</param>
    /// <exception cref="InvalidOperationException">ACCESS_PLATFORM was not acked, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The channel broke.</exception>
    internal void SendIotlbMiss(ulong iova, VhostIotlbAccess permission)
    {
        if ((Features & (ulong)VirtioFeatures.AccessPlatform) == 0)
        {
            throw new InvalidOperationException("IotlbMsg needs VIRTIO_F_ACCESS_PLATFORM, which was not acked");
        }

        RequireFeature(BackendRequest.IotlbMsg, withFd: false);
        var message = new VhostUserIotlbMessage { Iova = iova, Permission = permission, Type = VhostIotlbType.Miss };
        try
        {
            VhostUserLogging.BackendRequestSent(_logger, BackendRequest.IotlbMsg, Marshal.SizeOf<VhostUserIotlbMessage>());
            _endpoint.Send((uint)BackendRequest.IotlbMsg, VhostUserHeaderFlags.None, in message);
        }
        catch (VhostUserException e) when (_endpoint.LatchIfBroken(e))
        {
            VhostUserLogging.BackendChannelFailed(_logger, BackendRequest.IotlbMsg, e.GetType().Name, e.Message);
            throw;
        }
    }

    /// <summary>VRING_HOST_NOTIFIER_MSG: set (with an fd) or remove (without) the host notifier of a ring (needs HOST_NOTIFIER, and BACKEND_SEND_FD to pass an fd).</summary>
    /// <param name="queueIndex">The ring (0-255).</param>
    /// <param name="size">The size of the notifier area.</param>
    /// <param name="offset">Its offset in <paramref name="fd"/>.</param>
    /// <param name="fd">The fd to map, or <see langword="null"/> to remove the notifier; stays owned by the caller.</param>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void SetVringHostNotifier(int queueIndex, ulong size, ulong offset, SafeHandle? fd)
    {
        CheckQueue(queueIndex);
        var area = new VhostUserVringArea
        {
            IndexAndFlags = (ulong)(uint)queueIndex | (fd is null ? VhostUserLimits.VringNoFdFlag : 0),
            Size = size,
            Offset = offset,
        };
        if (!area.IsValid())
        {
            throw new ArgumentException("VringHostNotifierMsg: offset + size wraps");
        }

        Request(BackendRequest.VringHostNotifierMsg, Bytes(in area), fd);
    }

    /// <summary>
    /// VRING_CALL: an in-band used-buffer notification (needs INBAND_NOTIFICATIONS). Sent without
    /// NEED_REPLY even when REPLY_ACK is negotiated, and without waiting for the reply of a request
    /// another thread has in flight: a worker never waits for the front-end.
    /// </summary>
    /// <param name="queueIndex">The ring.</param>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The channel broke.</exception>
    public void SendVringCall(int queueIndex) => Notify(BackendRequest.VringCall, queueIndex);

    /// <summary>VRING_ERR: an in-band error notification (needs INBAND_NOTIFICATIONS); sent as <see cref="SendVringCall"/> is, without NEED_REPLY.</summary>
    /// <param name="queueIndex">The ring.</param>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The channel broke.</exception>
    public void SendVringError(int queueIndex) => Notify(BackendRequest.VringErr, queueIndex);

    /// <summary>SHARED_OBJECT_ADD: export an object (needs SHARED_OBJECT).</summary>
    /// <param name="uuid">The object.</param>
    /// <exception cref="ArgumentException">Nil UUID.</exception>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void SharedObjectAdd(Guid uuid) => SharedObject(BackendRequest.SharedObjectAdd, uuid);

    /// <summary>SHARED_OBJECT_REMOVE: withdraw an object (needs SHARED_OBJECT).</summary>
    /// <param name="uuid">The object.</param>
    /// <exception cref="ArgumentException">Nil UUID.</exception>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void SharedObjectRemove(Guid uuid) => SharedObject(BackendRequest.SharedObjectRemove, uuid);

    /// <summary>SHARED_OBJECT_LOOKUP: ask the front-end for an object's dmabuf (needs SHARED_OBJECT). Always waits for the reply, which carries the fd.</summary>
    /// <param name="uuid">The object.</param>
    /// <returns>The dmabuf fd; the caller owns it.</returns>
    /// <exception cref="VhostUserException">Unknown object (<see cref="VhostUserPeerRefusedException"/>) or the channel broke.</exception>
    public SafeFileHandle SharedObjectLookup(Guid uuid)
    {
        var payload = new VhostUserSharedObject(uuid);
        if (!payload.IsValid())
        {
            throw new ArgumentException("SharedObjectLookup: nil or max UUID");
        }

        RequireFeature(BackendRequest.SharedObjectLookup, withFd: false);
        VhostUserLogging.BackendRequestSent(_logger, BackendRequest.SharedObjectLookup, Unsafe.SizeOf<VhostUserSharedObject>());
        using VhostUserMessage reply = _endpoint.Request(
            (uint)BackendRequest.SharedObjectLookup,
            nameof(BackendRequest.SharedObjectLookup),
            VhostUserHeaderFlags.NeedReply,
            Bytes(in payload),
            [],
            expectReply: true,
            maxReplyFds: 1,
            ReplyTimeout,
            e => VhostUserLogging.BackendChannelFailed(_logger, BackendRequest.SharedObjectLookup, e.GetType().Name, e.Message))!;
        ulong value = CheckReply(BackendRequest.SharedObjectLookup, reply);
        if (value != 0)
        {
            throw new VhostUserPeerRefusedException(value, $"SharedObjectLookup: the front-end failed it with {DescribeFrontendError(value)}");
        }

        if (reply.Fds.Count != 1)
        {
            throw Broken(BackendRequest.SharedObjectLookup, new VhostUserProtocolException(VhostUserViolation.IncorrectFds, "SharedObjectLookup: the successful reply carries no fd"));
        }

        return reply.Fds.Take(0);
    }

    /// <summary>SHMEM_MAP: map <paramref name="fd"/> into a VIRTIO shared memory region (needs SHMEM and BACKEND_SEND_FD).</summary>
    /// <param name="map">What to map where.</param>
    /// <param name="fd">The fd; stays owned by the caller.</param>
    /// <exception cref="ArgumentException">Invalid map.</exception>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void ShmemMap(in VhostUserShmemMap map, SafeHandle fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        if (!map.IsValid())
        {
            throw new ArgumentException("ShmemMap: zero length, wrapping range or unknown flags");
        }

        Request(BackendRequest.ShmemMap, Bytes(in map), fd);
    }

    /// <summary>SHMEM_UNMAP: unmap part of a VIRTIO shared memory region (needs SHMEM).</summary>
    /// <param name="map">What to unmap (the fd offset and flags are ignored).</param>
    /// <exception cref="ArgumentException">Invalid range.</exception>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="VhostUserException">The front-end failed it (<see cref="VhostUserPeerRefusedException"/>), or the channel broke.</exception>
    public void ShmemUnmap(in VhostUserShmemMap map)
    {
        if (map.Length == 0 || map.ShmemOffset > ulong.MaxValue - map.Length)
        {
            throw new ArgumentException("ShmemUnmap: zero length or wrapping range");
        }

        Request(BackendRequest.ShmemUnmap, Bytes(in map), null);
    }

    /// <summary>Closes the channel. Idempotent.</summary>
    public void Dispose() => _endpoint.Dispose();

    private static VhostUserNegotiation Fixed(VhostUserProtocolFeatures protocolFeatures, ulong features)
    {
        var negotiation = new VhostUserNegotiation();
        negotiation.AckProtocolFeatures(protocolFeatures);
        negotiation.AckFeatures(features);
        return negotiation;
    }

    private static ReadOnlySpan<byte> Bytes<T>(in T value)
        where T : unmanaged
        => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));

    private static void CheckQueue(int queueIndex, int max = VhostUserLimits.MaxVringFileIndex)
    {
        if (queueIndex < 0 || queueIndex > max)
        {
            throw new ArgumentException($"queue index {queueIndex} is outside 0..{max}");
        }
    }

    private void SharedObject(BackendRequest request, Guid uuid)
    {
        var payload = new VhostUserSharedObject(uuid);
        if (!payload.IsValid())
        {
            throw new ArgumentException($"{request}: nil or max UUID");
        }

        Request(request, Bytes(in payload), null);
    }

    /// <summary>
    /// Checks the request's protocol-feature gate, read from the one back-end request table (the
    /// front-end dispatcher's), plus BACKEND_SEND_FD when an fd goes with it.
    /// </summary>
    private void RequireFeature(BackendRequest request, bool withFd)
    {
        VhostUserProtocolFeatures needed = VhostUserFrontendRequestDispatcher.GateOf(request) | (withFd ? VhostUserProtocolFeatures.BackendSendFd : 0);
        if ((ProtocolFeatures & needed) != needed)
        {
            throw new InvalidOperationException($"{request} needs protocol feature {needed}, which was not negotiated");
        }
    }

    /// <summary>A notification: one message, no NEED_REPLY, sent between two requests' messages (the endpoint's send lock only, never the reply wait).</summary>
    private void Notify(BackendRequest request, int queueIndex)
    {
        CheckQueue(queueIndex, VhostUserLimits.MaxQueues - 1);
        RequireFeature(request, withFd: false);
        var state = new VhostUserVringState((uint)queueIndex, 0);
        try
        {
            VhostUserLogging.BackendRequestSent(_logger, request, sizeof(uint) * 2);
            _endpoint.Send((uint)request, VhostUserHeaderFlags.None, in state);
        }
        catch (VhostUserException e) when (_endpoint.LatchIfBroken(e))
        {
            VhostUserLogging.BackendChannelFailed(_logger, request, e.GetType().Name, e.Message);
            throw;
        }
    }

    private void Request(BackendRequest request, ReadOnlySpan<byte> payload, SafeHandle? fd)
    {
        RequireFeature(request, withFd: fd is not null);
        bool ack = (ProtocolFeatures & VhostUserProtocolFeatures.ReplyAck) != 0;
        VhostUserLogging.BackendRequestSent(_logger, request, payload.Length);
        using VhostUserMessage? reply = _endpoint.Request(
            (uint)request,
            request.ToString(),
            ack ? VhostUserHeaderFlags.NeedReply : VhostUserHeaderFlags.None,
            payload,
            fd is null ? [] : [fd],
            expectReply: ack,
            maxReplyFds: 0,
            ReplyTimeout,
            e => VhostUserLogging.BackendChannelFailed(_logger, request, e.GetType().Name, e.Message));
        if (reply is null)
        {
            return;
        }

        ulong value = CheckReply(request, reply);
        if (value != 0)
        {
            VhostUserLogging.FrontendRejected(_logger, request, DescribeFrontendError(value));
            throw new VhostUserPeerRefusedException(value, $"{request}: the front-end failed it with {DescribeFrontendError(value)}");
        }
    }

    /// <summary>Reads a u64 reply; a reply of another size puts the stream out of step and fails the channel.</summary>
    private ulong CheckReply(BackendRequest request, VhostUserMessage reply)
    {
        try
        {
            return VhostUserEndpoint.ReadU64(reply, request.ToString());
        }
        catch (VhostUserException e)
        {
            throw Broken(request, e);
        }
    }

    private VhostUserException Broken(BackendRequest request, VhostUserException e)
    {
        if (_endpoint.LatchIfBroken(e))
        {
            VhostUserLogging.BackendChannelFailed(_logger, request, e.GetType().Name, e.Message);
        }

        return e;
    }

    private static string DescribeFrontendError(ulong value)
    {
        long signed = unchecked((long)value);
        return signed is < 0 and > -4096 ? $"{(Errno)(-signed)} ({signed})" : $"0x{value:x}";
    }
}
