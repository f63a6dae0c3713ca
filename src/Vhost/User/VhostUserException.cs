namespace Vhost.User;

/// <summary>
/// A vhost-user protocol or transport failure. The derived types say what a caller does about it:
/// <see cref="VhostUserConnectionClosedException"/> and <see cref="VhostUserTimeoutException"/>
/// (reconnect), <see cref="VhostUserPeerRefusedException"/> (the peer answered the request with a
/// failure; the connection is still good), <see cref="VhostUserProtocolException"/> (the peer broke
/// the protocol; drop the connection). The base type itself is thrown for other socket failures
/// (connect, bind, listen, accept, an unexpected errno), with <see cref="VhostException.ErrorCode"/> set.
/// </summary>
/// <remarks>
/// Misuse by the caller is not a vhost-user error: an invalid argument is an
/// <see cref="ArgumentException"/>, a call in the wrong state (including a call that needs a
/// feature that was not negotiated, or a call on a connection that failed earlier) an
/// <see cref="InvalidOperationException"/>, and a handler or device method that is not implemented
/// a <see cref="NotSupportedException"/>.
/// </remarks>
public class VhostUserException : VhostException
{
    /// <summary>Creates an exception.</summary>
    /// <param name="message">What went wrong, in words an operator can act on.</param>
    public VhostUserException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception wrapping another one.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public VhostUserException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    internal VhostUserException(Errno errno, string operation, string? detail = null)
        : base(errno, operation, detail)
    {
    }

    /// <summary>
    /// Whether the connection is worth re-establishing: the peer went away, broke the stream or
    /// stopped answering (<see cref="VhostUserConnectionClosedException"/> or
    /// <see cref="VhostUserTimeoutException"/>) rather than rejecting a request or breaking the protocol.
    /// </summary>
    public bool ShouldReconnect => this is VhostUserConnectionClosedException or VhostUserTimeoutException;
}

/// <summary>
/// The connection is gone: the peer closed it between messages, closed it in the middle of a
/// message (a truncated message), or the socket broke (EPIPE, ECONNRESET), or it was closed locally.
/// </summary>
/// <remarks>
/// What to do: nothing more can be sent on this connection; dispose it and, if the device is still
/// wanted, reconnect (a front-end with a new <see cref="VhostUserFrontend"/>, replaying the setup).
/// A back-end serving loop treats an orderly close between messages as the end of the session and
/// returns normally instead of throwing.
/// </remarks>
public sealed class VhostUserConnectionClosedException : VhostUserException
{
    /// <summary>Creates an exception.</summary>
    /// <param name="message">How the connection ended.</param>
    public VhostUserConnectionClosedException(string message)
        : base(message)
    {
        Kind = VhostUserCloseKind.Broken;
    }

    /// <summary>Creates an exception wrapping another one.</summary>
    /// <param name="message">How the connection ended.</param>
    /// <param name="innerException">The cause.</param>
    public VhostUserConnectionClosedException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Kind = VhostUserCloseKind.Broken;
    }

    internal VhostUserConnectionClosedException(VhostUserCloseKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    internal VhostUserConnectionClosedException(Errno errno, string operation)
        : base(errno, operation)
    {
        Kind = VhostUserCloseKind.Broken;
    }

    /// <summary>How the connection ended (an orderly close between messages ends a serving loop normally).</summary>
    internal VhostUserCloseKind Kind { get; }
}

/// <summary>How a vhost-user connection ended.</summary>
internal enum VhostUserCloseKind
{
    /// <summary>Closed between messages, by the peer or locally.</summary>
    Orderly,

    /// <summary>Closed in the middle of a message.</summary>
    Truncated,

    /// <summary>The socket broke (EPIPE, ECONNRESET, ...).</summary>
    Broken,
}

/// <summary>The peer did not answer within the reply timeout.</summary>
/// <remarks>
/// What to do: the request and reply stream is out of step (a late reply would be read as the answer
/// to the next request), so the connection is failed; treat it like
/// <see cref="VhostUserConnectionClosedException"/> and reconnect. It is a separate type because a
/// hung peer is worth logging differently from one that went away.
/// </remarks>
public sealed class VhostUserTimeoutException : VhostUserException
{
    /// <summary>Creates an exception.</summary>
    /// <param name="message">What was being waited for.</param>
    public VhostUserTimeoutException(string message)
        : base(message)
    {
    }

    internal VhostUserTimeoutException(Errno errno, string operation, string detail)
        : base(errno, operation, detail)
    {
    }
}

/// <summary>
/// The peer processed the request and answered with a failure: a non-zero REPLY_ACK, a non-zero
/// u64 result, or an error value in the reply body. <see cref="ReplyCode"/> is what it sent.
/// </summary>
/// <remarks>
/// What to do: the connection is still in step and usable; the request had no effect. Retry with
/// other values, fall back, or give up on that operation. (A request this side cannot make because
/// a feature was not negotiated fails earlier, with <see cref="InvalidOperationException"/>,
/// without reaching the peer.)
/// </remarks>
public sealed class VhostUserPeerRefusedException : VhostUserException
{
    /// <summary>Creates the exception for a peer that reported failure.</summary>
    /// <param name="replyCode">The non-zero acknowledgement or error value the peer sent.</param>
    /// <param name="message">What went wrong.</param>
    public VhostUserPeerRefusedException(ulong replyCode, string message)
        : base(message)
    {
        ReplyCode = replyCode;
    }

    /// <summary>The peer's non-zero reply value (a back-end usually sends 1; a front-end a negative errno).</summary>
    public ulong ReplyCode { get; }
}

/// <summary>
/// The peer broke the protocol: a malformed message (unknown code, wrong size, bad values, a reply
/// that does not match the request), a malformed header (wrong version, reserved or reply flags),
/// an oversized message, the wrong number of fds, or a message that needs a feature that was not negotiated.
/// </summary>
/// <remarks>
/// What to do: the peer is buggy or hostile; log the message and drop the connection (a front-end
/// fails its connection; a back-end serving loop ends). A message-level violation on a request that
/// has a failure reply is answered with that failure first, so a well-behaved peer learns why.
/// </remarks>
public sealed class VhostUserProtocolException : VhostUserException
{
    /// <summary>Creates an exception for a malformed message.</summary>
    /// <param name="message">What was wrong with the message, naming the request.</param>
    public VhostUserProtocolException(string message)
        : base(message)
    {
        Violation = VhostUserViolation.InvalidMessage;
    }

    /// <summary>Creates an exception for a malformed message, wrapping the cause.</summary>
    /// <param name="message">What was wrong with the message, naming the request.</param>
    /// <param name="innerException">The cause.</param>
    public VhostUserProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Violation = VhostUserViolation.InvalidMessage;
    }

    internal VhostUserProtocolException(VhostUserViolation violation, string message)
        : base(message)
    {
        Violation = violation;
    }

    internal VhostUserProtocolException(VhostUserViolation violation, string message, Exception? innerException)
        : base(message, innerException)
    {
        Violation = violation;
    }

    /// <summary>Which rule the peer broke.</summary>
    internal VhostUserViolation Violation { get; }
}

/// <summary>Which protocol rule a peer broke (internal detail of <see cref="VhostUserProtocolException"/>).</summary>
internal enum VhostUserViolation
{
    /// <summary>A message is malformed: unknown code, wrong size, bad values, a reply that does not match the request.</summary>
    InvalidMessage,

    /// <summary>A message header is malformed: wrong version, reserved flags, a reply flag on a request.</summary>
    InvalidHeader,

    /// <summary>A message is larger than the payload limit.</summary>
    OversizedMessage,

    /// <summary>A message carries the wrong number of fds, or fds arrived with body bytes.</summary>
    IncorrectFds,

    /// <summary>A message needs a protocol or virtio feature that was not negotiated.</summary>
    InactiveFeature,
}

/// <summary>
/// A local request handler failed a request the peer sent (the handler threw); the dispatcher has
/// already answered the peer with a failure where the request has a failure reply. Internal: callers
/// see it as a <see cref="VhostUserException"/> with the handler's exception inside.
/// </summary>
internal sealed class VhostUserRequestHandlerException : VhostUserException
{
    internal VhostUserRequestHandlerException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
