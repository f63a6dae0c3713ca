using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// One end of a vhost-user stream socket (the rust-vmm <c>Endpoint</c>). Reads header-first with
/// <c>recvmsg</c> so fds belong to exactly one message, validates the header, reads the exact
/// body, and writes each message with its fds in one <c>sendmsg</c>.
/// </summary>
/// <remarks>
/// Not thread-safe for concurrent sends or concurrent receives; one sender and one receiver
/// thread may run at once. <see cref="Shutdown"/> and <see cref="Dispose"/> may be called from
/// any thread and wake a blocked <see cref="Receive(int, CancellationToken)"/> with
/// a <see cref="VhostUserConnectionClosedException"/>.
/// </remarks>
internal sealed class VhostUserConnection : IDisposable
{
    /// <summary>How often a blocked receive checks its cancellation token, in milliseconds.</summary>
    private const int CancellationPollMilliseconds = 50;

    private readonly SafeFileHandle _socket;
    private int _disposed;

    /// <summary>Wraps a connected AF_UNIX stream socket; the connection owns it from now on.</summary>
    /// <param name="socket">The socket fd.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public VhostUserConnection(SafeFileHandle socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.IsInvalid || socket.IsClosed)
        {
            throw new ArgumentException("the socket handle is closed or invalid", nameof(socket));
        }

        _socket = socket;
    }

    /// <summary>The socket fd (owned by this connection): for polling (epoll) or credentials; do not read, write or close it directly.</summary>
    public SafeFileHandle Handle => _socket;

    /// <summary>Creates a connected pair over <c>socketpair(AF_UNIX, SOCK_STREAM)</c>.</summary>
    /// <returns>The two ends.</returns>
    /// <exception cref="VhostException">The socketpair call failed.</exception>
    public static (VhostUserConnection First, VhostUserConnection Second) CreatePair()
    {
        (SafeFileHandle a, SafeFileHandle b) = UnixSocket.CreatePair();
        return (new VhostUserConnection(a), new VhostUserConnection(b));
    }

    /// <summary>Sends one message: header and body in one buffer, fds attached to the same <c>sendmsg</c>.</summary>
    /// <param name="request">The request code.</param>
    /// <param name="flags">Header flags (the version is added when missing).</param>
    /// <param name="body">The payload (at most <see cref="VhostUserLimits.MaxPayloadSize"/> bytes).</param>
    /// <param name="fds">Fds to attach (at most <see cref="VhostUserLimits.MaxAttachedFds"/>); the caller keeps ownership.</param>
    /// <exception cref="VhostUserException">The payload is too large, too many fds, or the socket failed.</exception>
    public void Send(uint request, VhostUserHeaderFlags flags, ReadOnlySpan<byte> body, ReadOnlySpan<SafeHandle> fds = default)
    {
        if (body.Length > VhostUserLimits.MaxPayloadSize)
        {
            throw new VhostUserProtocolException(VhostUserViolation.OversizedMessage, $"payload of {body.Length} bytes exceeds the {VhostUserLimits.MaxPayloadSize}-byte limit");
        }

        if (fds.Length > VhostUserLimits.MaxAttachedFds)
        {
            throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"{fds.Length} fds exceed the limit of {VhostUserLimits.MaxAttachedFds} per message");
        }

        Span<byte> buffer = stackalloc byte[VhostUserLimits.HeaderSize + VhostUserLimits.MaxPayloadSize];
        var header = new VhostUserHeader(request, flags, (uint)body.Length);
        MemoryMarshal.Write(buffer, in header);
        body.CopyTo(buffer[VhostUserLimits.HeaderSize..]);
        SendRaw(buffer[..(VhostUserLimits.HeaderSize + body.Length)], fds);
    }

    /// <summary>Sends one message with a struct payload.</summary>
    /// <typeparam name="T">A wire struct.</typeparam>
    /// <param name="request">The request code.</param>
    /// <param name="flags">Header flags.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="fds">Fds to attach; the caller keeps ownership.</param>
    /// <exception cref="VhostUserException">The socket failed.</exception>
    public void Send<T>(uint request, VhostUserHeaderFlags flags, in T payload, ReadOnlySpan<SafeHandle> fds = default)
        where T : unmanaged
    {
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in payload));
        Send(request, flags, bytes, fds);
    }

    /// <summary>
    /// Raw, test-oriented API: sends <paramref name="bytes"/> exactly as given, with
    /// <paramref name="fds"/> attached to the first byte. No header is built or checked, so this can
    /// produce malformed or partial messages: it exists for conformance tests, hostile-peer test
    /// harnesses and probing tools. Protocol code uses
    /// <see cref="Send(uint, VhostUserHeaderFlags, ReadOnlySpan{byte}, ReadOnlySpan{SafeHandle})"/>.
    /// </summary>
    /// <param name="bytes">The bytes.</param>
    /// <param name="fds">Fds to attach.</param>
    /// <exception cref="VhostUserException">The socket failed.</exception>
    public void SendRaw(ReadOnlySpan<byte> bytes, ReadOnlySpan<SafeHandle> fds = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        int sent = 0;
        bool first = true;
        while (sent < bytes.Length || first)
        {
            int n;
            Interop.Error errno;
            try
            {
                n = ScmRights.TrySend(_socket, bytes[sent..], first ? fds : ReadOnlySpan<SafeHandle>.Empty, out errno);
            }
            catch (ObjectDisposedException)
            {
                throw new VhostUserConnectionClosedException(VhostUserCloseKind.Broken, "the connection was closed");
            }

            if (n < 0)
            {
                throw SocketException((Errno)errno, "sendmsg");
            }

            first = false;
            sent += n;
            if (bytes.IsEmpty)
            {
                break;
            }
        }
    }

    /// <summary>Receives one message, waiting at most <paramref name="timeoutMilliseconds"/> for all of it.</summary>
    /// <param name="timeoutMilliseconds">The deadline for the whole message; -1 waits forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The message; dispose it to close the fds nobody took.</returns>
    /// <exception cref="VhostUserException">
    /// A socket error. The derived types: <see cref="VhostUserConnectionClosedException"/> when the
    /// peer closed between messages or inside one, or the socket broke;
    /// <see cref="VhostUserTimeoutException"/>; <see cref="VhostUserProtocolException"/> for a bad
    /// header, an oversized message or wrong fds (fds with body bytes, or more than
    /// <see cref="VhostUserLimits.MaxAttachedFds"/>).
    /// </exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public VhostUserMessage Receive(int timeoutMilliseconds = -1, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        long deadline = timeoutMilliseconds < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMilliseconds;
        var fds = new List<SafeFileHandle>();
        try
        {
            Span<byte> headerBytes = stackalloc byte[VhostUserLimits.HeaderSize];
            int got = 0;
            while (got < headerBytes.Length)
            {
                WaitReadable(deadline, cancellationToken, got == 0 ? "a message" : "the rest of a message header");
                int before = fds.Count;
                int n = ReceiveChunk(headerBytes[got..], fds, got == 0 ? VhostUserLimits.MaxAttachedFds : ScmRights.MaxFds);
                if (n == 0)
                {
                    throw got == 0
                        ? new VhostUserConnectionClosedException(VhostUserCloseKind.Orderly, "the peer closed the connection")
                        : new VhostUserConnectionClosedException(VhostUserCloseKind.Truncated, $"the peer closed the connection after {got} of {VhostUserLimits.HeaderSize} header bytes");
                }

                if (got > 0 && fds.Count > before)
                {
                    throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, "fds arrived after the first byte of a message header");
                }

                got += n;
            }

            VhostUserHeader header = MemoryMarshal.Read<VhostUserHeader>(headerBytes);
            ValidateHeader(header);

            byte[] body = header.Size == 0 ? [] : new byte[header.Size];
            int bodyGot = 0;
            var stray = new List<SafeFileHandle>();
            while (bodyGot < body.Length)
            {
                WaitReadable(deadline, cancellationToken, "a message body");
                int n = ReceiveChunk(body.AsSpan(bodyGot), stray, ScmRights.MaxFds);
                if (stray.Count > 0)
                {
                    foreach (SafeFileHandle fd in stray)
                    {
                        fd.Dispose();
                    }

                    throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"request {header.Request}: fds arrived with body bytes; they were closed");
                }

                if (n == 0)
                {
                    throw new VhostUserConnectionClosedException(VhostUserCloseKind.Truncated, $"request {header.Request}: the peer closed the connection after {bodyGot} of {body.Length} body bytes");
                }

                bodyGot += n;
            }

            return new VhostUserMessage(header, body, new ReceivedFds(fds));
        }
        catch
        {
            foreach (SafeFileHandle fd in fds)
            {
                fd.Dispose();
            }

            throw;
        }
    }

    /// <summary>Waits until a message (or a close) is readable.</summary>
    /// <param name="timeoutMilliseconds">The wait limit; -1 waits forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns><see langword="false"/> on timeout.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public bool WaitReadable(int timeoutMilliseconds, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        long deadline = timeoutMilliseconds < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMilliseconds;
        return PollUntil(deadline, cancellationToken);
    }

    /// <summary>Shuts the socket down in both directions: the peer and any blocked receive here see a close.</summary>
    public void Shutdown()
    {
        if (_disposed != 0 || _socket.IsClosed)
        {
            return;
        }

        try
        {
            UnixSocket.Shutdown(_socket);
        }
        catch (VhostException)
        {
            // Already gone: nothing to shut down.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Shuts down and closes the socket. Idempotent. The shutdown acts on the socket, not the fd:
    /// a duplicate of the fd held elsewhere (one passed to a peer) is cut off too, so close such
    /// an fd through its <see cref="SafeFileHandle"/> instead.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            UnixSocket.Shutdown(_socket);
        }
        catch (VhostException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        _socket.Dispose();
    }

    internal static VhostUserException SocketException(Errno errno, string operation) => errno switch
    {
        Errno.EPIPE or Errno.ECONNRESET or Errno.ENOTCONN or Errno.ESHUTDOWN => new VhostUserConnectionClosedException(errno, operation),
        Errno.EAGAIN => new VhostUserException(errno, operation),
        _ => new VhostUserException(errno, operation),
    };

    private static void ValidateHeader(in VhostUserHeader header)
    {
        if ((header.Flags & VhostUserHeaderFlags.VersionMask) != VhostUserHeaderFlags.Version1)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidHeader, $"request {header.Request}: unsupported protocol version {(uint)(header.Flags & VhostUserHeaderFlags.VersionMask)} (flags 0x{(uint)header.Flags:x})");
        }

        if ((header.Flags & ~VhostUserHeaderFlags.AllKnown) != 0)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidHeader, $"request {header.Request}: reserved header flag bits set (flags 0x{(uint)header.Flags:x})");
        }

        if (header.Size > VhostUserLimits.MaxPayloadSize)
        {
            throw new VhostUserProtocolException(VhostUserViolation.OversizedMessage, $"request {header.Request}: payload size {header.Size} exceeds the {VhostUserLimits.MaxPayloadSize}-byte limit");
        }
    }

    private int ReceiveChunk(Span<byte> buffer, List<SafeFileHandle> fds, int maxFds)
    {
        int n;
        Interop.Error errno;
        try
        {
            n = ScmRights.TryReceive(_socket, buffer, fds, out errno, 0, maxFds);
        }
        catch (ObjectDisposedException)
        {
            throw new VhostUserConnectionClosedException(VhostUserCloseKind.Orderly, "the connection was closed locally");
        }
        catch (VhostException e) when (e.Errno == Errno.ENOBUFS)
        {
            throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"the peer attached more than {maxFds} fds to one message; all were closed", e);
        }

        if (n < 0)
        {
            throw SocketException((Errno)errno, "recvmsg");
        }

        return n;
    }

    private void WaitReadable(long deadline, CancellationToken cancellationToken, string what)
    {
        if (!PollUntil(deadline, cancellationToken))
        {
            throw new VhostUserTimeoutException(Errno.ETIMEDOUT, "recvmsg", $"timed out waiting for {what}");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PollUntil(long deadline, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long remaining = deadline == long.MaxValue ? -1 : Math.Max(0, deadline - Environment.TickCount64);
            int slice = cancellationToken.CanBeCanceled
                ? (remaining < 0 ? CancellationPollMilliseconds : (int)Math.Min(remaining, CancellationPollMilliseconds))
                : (remaining < 0 ? -1 : (int)Math.Min(remaining, int.MaxValue));
            bool ready;
            try
            {
                ready = UnixSocket.WaitReady(_socket, Interop.POLLIN, slice);
            }
            catch (ObjectDisposedException)
            {
                throw new VhostUserConnectionClosedException(VhostUserCloseKind.Orderly, "the connection was closed locally");
            }

            if (ready)
            {
                return true;
            }

            if (remaining >= 0 && Environment.TickCount64 >= deadline)
            {
                return false;
            }
        }
    }
}
