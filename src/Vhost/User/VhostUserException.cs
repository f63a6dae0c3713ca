namespace Vhost.User;

/// <summary>A vhost-user protocol or transport failure, with its <see cref="Reason"/>.</summary>
public class VhostUserException : VhostException
{
    /// <summary>Creates an exception.</summary>
    /// <param name="reason">Why it failed.</param>
    /// <param name="message">What went wrong, in words an operator can act on.</param>
    public VhostUserException(VhostUserError reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    /// <summary>Creates an exception wrapping another one.</summary>
    /// <param name="reason">Why it failed.</param>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public VhostUserException(VhostUserError reason, string message, Exception? innerException)
        : base(message, innerException)
    {
        Reason = reason;
    }

    /// <summary>Creates an exception for a failed system call on the socket.</summary>
    /// <param name="reason">Why it failed.</param>
    /// <param name="errno">The error number.</param>
    /// <param name="operation">The failed call.</param>
    /// <param name="detail">Optional context.</param>
    public VhostUserException(VhostUserError reason, Errno errno, string operation, string? detail = null)
        : base(errno, operation, detail)
    {
        Reason = reason;
    }

    /// <summary>Creates the exception for a peer that reported failure.</summary>
    /// <param name="replyCode">The non-zero acknowledgement or error value the peer sent.</param>
    /// <param name="message">What went wrong.</param>
    public VhostUserException(ulong replyCode, string message)
        : base(message)
    {
        Reason = VhostUserError.RequestFailed;
        ReplyCode = replyCode;
    }

    /// <summary>Why the operation failed.</summary>
    public VhostUserError Reason { get; }

    /// <summary>The peer's non-zero reply value for <see cref="VhostUserError.RequestFailed"/>; otherwise <see langword="null"/>.</summary>
    public ulong? ReplyCode { get; }

    /// <summary>
    /// Whether the connection is worth re-establishing: the peer went away or broke the stream
    /// (disconnected, truncated message, broken socket, timeout) rather than rejecting a request.
    /// </summary>
    public bool ShouldReconnect => Reason is VhostUserError.Disconnected or VhostUserError.PartialMessage
        or VhostUserError.SocketBroken or VhostUserError.Timeout;
}
