using System.Runtime.InteropServices;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// One end of a vhost-user conversation, as every protocol type uses it: the front-end, the
/// back-end channel sender and both request dispatchers. It sends a message with its fds in one
/// <c>sendmsg</c>, receives header-first (the version, flag, size and fd checks of
/// <see cref="VhostUserConnection.Receive(int, CancellationToken)"/>), runs a request and waits for
/// its reply with a timeout, serves requests in a loop, and holds a failure latch: once a
/// request/reply exchange or the serve loop left the stream out of step, every later call fails fast
/// with <see cref="InvalidOperationException"/> carrying the first error.
/// </summary>
/// <remarks>
/// Thread-safety: one request/reply exchange at a time (<see cref="EnterExchange"/>); single sends
/// are serialized among themselves, so a one-way notification may go out between a request and its
/// reply without waiting for that reply. Receives outside an exchange belong to one serving thread.
/// </remarks>
internal sealed class VhostUserEndpoint : IDisposable
{
    private readonly Lock _exchangeGate = new();
    private readonly Lock _sendGate = new();
    private volatile VhostUserException? _failure;

    /// <summary>Creates the endpoint over <paramref name="connection"/>, which it owns from now on.</summary>
    internal VhostUserEndpoint(VhostUserConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Connection = connection;
    }

    /// <summary>The transport (the socket).</summary>
    internal VhostUserConnection Connection { get; }

    /// <summary>The error that failed the endpoint, or <see langword="null"/>.</summary>
    internal VhostUserException? Failure => _failure;

    /// <summary>Whether an exception leaves the stream out of step, so the endpoint cannot be used again.</summary>
    internal static bool BreaksStream(VhostUserException e) => e is not VhostUserPeerRefusedException;

    /// <summary>Reads a u64 reply body (exactly 8 bytes).</summary>
    internal static ulong ReadU64(VhostUserMessage reply, string name)
    {
        if (reply.Body.Length != sizeof(ulong))
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{name}: the reply payload is {reply.Body.Length} bytes, expected 8");
        }

        return reply.Read<VhostUserU64>().Value;
    }

    /// <summary>Throws when the endpoint failed earlier.</summary>
    internal void ThrowIfFailed()
    {
        VhostUserException? failure = _failure;
        if (failure is not null)
        {
            throw new InvalidOperationException($"the vhost-user connection failed earlier: {failure.Message}", failure);
        }
    }

    /// <summary>Latches <paramref name="e"/> when it breaks the stream (the first such error is kept).</summary>
    /// <returns>Whether the endpoint is now failed.</returns>
    internal bool LatchIfBroken(VhostUserException e)
    {
        if (!BreaksStream(e))
        {
            return false;
        }

        Interlocked.CompareExchange(ref _failure, e, null);
        return true;
    }

    /// <summary>
    /// Starts a request/reply exchange: takes the exchange lock (one exchange at a time) and fails
    /// fast when the endpoint failed earlier. Dispose the scope to end the exchange.
    /// </summary>
    internal Lock.Scope EnterExchange()
    {
        Lock.Scope scope = _exchangeGate.EnterScope();
        try
        {
            ThrowIfFailed();
        }
        catch
        {
            scope.Dispose();
            throw;
        }

        return scope;
    }

    /// <summary>Sends one message (header, body and fds in one <c>sendmsg</c>); fails fast on a failed endpoint.</summary>
    internal void Send(uint request, VhostUserHeaderFlags flags, ReadOnlySpan<byte> body, ReadOnlySpan<SafeHandle> fds = default)
    {
        lock (_sendGate)
        {
            ThrowIfFailed();
            Connection.Send(request, flags, body, fds);
        }
    }

    /// <summary>Sends one message with a struct payload.</summary>
    internal void Send<T>(uint request, VhostUserHeaderFlags flags, in T payload, ReadOnlySpan<SafeHandle> fds = default)
        where T : unmanaged
        => Send(request, flags, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in payload)), fds);

    /// <summary>Sends a reply: the request code with the reply flag.</summary>
    internal void Reply(uint request, ReadOnlySpan<byte> body, ReadOnlySpan<SafeHandle> fds = default)
        => Send(request, VhostUserHeaderFlags.Reply, body, fds);

    /// <summary>Sends a struct reply.</summary>
    internal void Reply<T>(uint request, in T payload, ReadOnlySpan<SafeHandle> fds = default)
        where T : unmanaged
        => Send(request, VhostUserHeaderFlags.Reply, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in payload)), fds);

    /// <summary>Receives the next message (header first, with the size and fd checks); fails fast on a failed endpoint.</summary>
    internal VhostUserMessage Receive(int timeoutMilliseconds, CancellationToken cancellationToken)
    {
        ThrowIfFailed();
        return Connection.Receive(timeoutMilliseconds, cancellationToken);
    }

    /// <summary>
    /// Receives the reply to <paramref name="request"/> within <paramref name="timeout"/>: the code
    /// must echo the request and the reply flag must be set (otherwise
    /// a <see cref="VhostUserProtocolException"/>), as is a reply with more than <paramref name="maxFds"/> fds.
    /// </summary>
    internal VhostUserMessage ReceiveReply(uint request, string name, TimeSpan timeout, int maxFds)
    {
        int ms = timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Min(int.MaxValue, (long)timeout.TotalMilliseconds);
        VhostUserMessage reply = Connection.Receive(ms);
        try
        {
            if (reply.Header.Request != request)
            {
                throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{name}: the reply carries request code {reply.Header.Request} instead of {request}");
            }

            if (!reply.Header.IsReply)
            {
                throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{name}: the reply lacks the reply flag");
            }

            if (reply.Fds.Count > maxFds)
            {
                throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"{name}: the reply carries {reply.Fds.Count} fds, at most {maxFds} expected");
            }

            return reply;
        }
        catch
        {
            reply.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The request/reply client: sends <paramref name="request"/> and, when
    /// <paramref name="expectReply"/>, waits at most <paramref name="timeout"/> for its reply, all in
    /// one exchange. An error that breaks the stream (timeout, malformed reply, broken socket) fails
    /// the endpoint; <paramref name="onBroken"/> is told first (for logging).
    /// </summary>
    /// <returns>The checked reply, or <see langword="null"/> when none was expected.</returns>
    internal VhostUserMessage? Request(uint request, string name, VhostUserHeaderFlags flags, ReadOnlySpan<byte> payload, ReadOnlySpan<SafeHandle> fds, bool expectReply, int maxReplyFds, TimeSpan timeout, Action<VhostUserException>? onBroken = null)
    {
        using (EnterExchange())
        {
            try
            {
                Send(request, flags, payload, fds);
                return expectReply ? ReceiveReply(request, name, timeout, maxReplyFds) : null;
            }
            catch (VhostUserException e) when (LatchIfBroken(e))
            {
                onBroken?.Invoke(e);
                throw;
            }
        }
    }

    /// <summary>
    /// The serve loop, shared by both dispatchers: handles requests until the peer closes between
    /// messages (returns normally) or the token is cancelled. An orderly close ends the loop; a failure the server says serving
    /// survives (<see cref="IVhostUserRequestServer.ContinuesAfter"/>) is swallowed; any other fails
    /// the endpoint and is rethrown.
    /// </summary>
    internal void Serve(IVhostUserRequestServer server, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                server.HandleNextRequest(-1, cancellationToken);
            }
            catch (VhostUserConnectionClosedException e) when (e.Kind == VhostUserCloseKind.Orderly)
            {
                server.OnPeerClosed();
                return;
            }
            catch (VhostUserException e) when (server.ContinuesAfter(e))
            {
            }
            catch (VhostUserException e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
                throw;
            }
        }
    }

    /// <summary>Shuts down and closes the socket. Idempotent.</summary>
    public void Dispose() => Connection.Dispose();
}

/// <summary>A request dispatcher as the endpoint's serve loop drives it.</summary>
internal interface IVhostUserRequestServer
{
    /// <summary>Reads and handles one request (replying, or reporting its failure, as its table row says).</summary>
    void HandleNextRequest(int timeoutMilliseconds, CancellationToken cancellationToken);

    /// <summary>Logs a failed request and says whether serving goes on after it.</summary>
    bool ContinuesAfter(VhostUserException e);

    /// <summary>The peer closed the connection between messages.</summary>
    void OnPeerClosed();
}
