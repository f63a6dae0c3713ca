namespace Vhost.User;

/// <summary>Why a vhost-user operation failed (the reason of a <see cref="VhostUserException"/>).</summary>
public enum VhostUserError
{
    /// <summary>A caller passed an invalid argument value to a protocol call.</summary>
    InvalidParameter,
    /// <summary>The operation is not valid in the current state (for example no back-end channel, or the endpoint failed earlier).</summary>
    InvalidOperation,
    /// <summary>The message needs a protocol or virtio feature that was not negotiated.</summary>
    InactiveFeature,
    /// <summary>The peer does not support the operation (a handler method that is not implemented).</summary>
    NotSupported,
    /// <summary>A message is malformed: unknown code, wrong size, bad values, a reply that does not match the request.</summary>
    InvalidMessage,
    /// <summary>A message header is malformed: wrong version, reserved flags, a reply flag on a request.</summary>
    InvalidHeader,
    /// <summary>A message is larger than <see cref="Messages.VhostUserLimits.MaxPayloadSize"/>.</summary>
    OversizedMessage,
    /// <summary>A message carries the wrong number of fds, or fds arrived with body bytes.</summary>
    IncorrectFds,
    /// <summary>The peer closed the connection between messages (an orderly close).</summary>
    Disconnected,
    /// <summary>The peer closed the connection in the middle of a message (a truncated message).</summary>
    PartialMessage,
    /// <summary>The peer did not answer within the reply timeout.</summary>
    Timeout,
    /// <summary>Connecting to the socket failed.</summary>
    SocketConnect,
    /// <summary>The connection is broken (EPIPE, ECONNRESET).</summary>
    SocketBroken,
    /// <summary>The socket would block; retry later (EAGAIN).</summary>
    SocketRetry,
    /// <summary>Another socket error.</summary>
    SocketError,
    /// <summary>The peer processed the request and reported failure (a non-zero acknowledgement or error reply); see <see cref="VhostUserException.ReplyCode"/>.</summary>
    RequestFailed,
    /// <summary>The local request handler failed.</summary>
    RequestHandlerError,
}
