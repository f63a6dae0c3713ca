using Microsoft.Win32.SafeHandles;

namespace Vhost.User;

/// <summary>
/// A listening vhost-user socket at a filesystem path (the back-end's server mode, or a
/// front-end waiting for a back-end in client mode). The socket file is created with mode 0600
/// unless told otherwise; a stale socket file (nobody listening) is replaced; the file is removed
/// on dispose.
/// </summary>
public sealed class VhostUserListener : IDisposable
{
    /// <summary>The default mode of the socket file: read and write for the owner only (0600).</summary>
    public const UnixFileMode DefaultMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const int CancellationPollMilliseconds = 50;
    private readonly SafeFileHandle _socket;
    private readonly bool _ownsFile = true;
    private int _disposed;

    /// <summary>Binds and listens on <paramref name="path"/>.</summary>
    /// <param name="path">The socket path (shorter than 108 bytes).</param>
    /// <param name="mode">The mode of the socket file; <see cref="DefaultMode"/> (0600) by default.</param>
    /// <param name="backlog">The listen backlog.</param>
    /// <exception cref="ArgumentException">The path is empty or too long.</exception>
    /// <exception cref="VhostUserException">
    /// Another process is listening on the path (<see cref="Errno.EADDRINUSE"/>), the path exists and
    /// is not a socket, or bind/listen failed.
    /// </exception>
    public unsafe VhostUserListener(string path, UnixFileMode mode = DefaultMode, int backlog = 16)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("vhost-user needs Linux");
        }

        uint length = UnixSocket.FillAddress(path, out Interop.sockaddr_un address);
        RemoveStaleSocket(path);
        SafeFileHandle socket = UnixSocket.Create();
        try
        {
            using (var scope = new Fd.HandleScope(socket))
            {
                if (Interop.bind(scope.Fd, &address, length) < 0)
                {
                    throw new VhostUserException(Interop.LastErrno, "bind", path);
                }

                // Set the mode before listen(): until then every connect is refused, so no peer can
                // get in through a more permissive umask-derived mode.
                File.SetUnixFileMode(path, mode);
                if (Interop.listen(scope.Fd, backlog) < 0)
                {
                    Errno errno = Interop.LastErrno;
                    File.Delete(path);
                    throw new VhostUserException(errno, "listen", path);
                }
            }

            Fd.SetNonBlocking(socket, true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _socket = socket;
        Path = path;
    }

    /// <summary>
    /// Adopts a socket that already listens (systemd socket activation, an inherited fd): it is made
    /// non-blocking and closed on dispose; no socket file is created or removed.
    /// </summary>
    /// <param name="listeningSocket">A listening AF_UNIX stream socket; the listener owns it from now on.</param>
    /// <param name="description">What <see cref="Path"/> reports (the bound path, or <c>fd N</c>).</param>
    internal VhostUserListener(SafeFileHandle listeningSocket, string description)
    {
        Fd.SetNonBlocking(listeningSocket, true);
        _socket = listeningSocket;
        _ownsFile = false;
        Path = description;
    }

    /// <summary>The socket path.</summary>
    public string Path { get; }

    /// <summary>The listening socket fd (owned by this listener).</summary>
    public SafeFileHandle Handle => _socket;

    /// <summary>Accepts one connection, waiting until one arrives or the token is cancelled.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connected socket; pass it to <c>VhostUserDaemon.Start</c> (package VhostUserBackend), which owns it from then on.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="VhostUserException">accept failed.</exception>
    public SafeFileHandle Accept(CancellationToken cancellationToken = default)
        => TryAccept(Timeout.InfiniteTimeSpan, cancellationToken)!;

    /// <summary>Accepts one connection, waiting at most <paramref name="timeout"/>.</summary>
    /// <param name="timeout">The wait limit; <see cref="Timeout.InfiniteTimeSpan"/> waits forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connected socket, or <see langword="null"/> on timeout.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="VhostUserException">accept failed.</exception>
    public SafeFileHandle? TryAccept(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        long timeoutMs = timeout == Timeout.InfiniteTimeSpan ? -1 : (long)timeout.TotalMilliseconds;
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long remaining = timeoutMs < 0 ? -1 : Math.Max(0, deadline - Environment.TickCount64);
            int slice = cancellationToken.CanBeCanceled
                ? (remaining < 0 ? CancellationPollMilliseconds : (int)Math.Min(remaining, CancellationPollMilliseconds))
                : (remaining < 0 ? -1 : (int)Math.Min(remaining, int.MaxValue));
            SafeFileHandle? accepted;
            try
            {
                accepted = UnixSocket.Accept(_socket, slice);
            }
            catch (VhostException e) when (e is not VhostUserException)
            {
                throw new VhostUserException(e.Errno ?? Errno.EIO, "accept4", Path);
            }

            if (accepted is not null)
            {
                return accepted;
            }

            if (remaining >= 0 && Environment.TickCount64 >= deadline)
            {
                return null;
            }
        }
    }

    /// <summary>Closes the listening socket and removes the socket file. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _socket.Dispose();
        if (!_ownsFile)
        {
            return;
        }

        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void RemoveStaleSocket(string path)
    {
        uint? type = UnixSocket.FileTypeOf(path);
        if (type is null)
        {
            return;
        }

        if (type != Interop.S_IFSOCK)
        {
            // Never delete something that is not a socket: the path is probably a mistake.
            throw new VhostUserException(Errno.EEXIST, "bind", $"{path} exists and is not a socket");
        }

        SafeFileHandle? probe = null;
        try
        {
            probe = UnixSocket.Connect(path);
        }
        catch (VhostException e) when (e.Errno == Errno.ECONNREFUSED)
        {
            // Stale: a socket file nobody listens on. Replace it.
            File.Delete(path);
            return;
        }
        catch (VhostException e) when (e.Errno == Errno.ENOENT)
        {
            return;
        }
        catch (VhostException e)
        {
            throw new VhostUserException(e.Errno ?? Errno.EEXIST, "bind", $"{path} exists and is not a usable socket");
        }
        finally
        {
            probe?.Dispose();
        }

        throw new VhostUserException(Errno.EADDRINUSE, "bind", $"another process is listening on {path}");
    }
}
