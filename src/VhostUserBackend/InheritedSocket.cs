using Microsoft.Win32.SafeHandles;
using Vhost;

namespace VhostUserBackend;

/// <summary>
/// Checks a socket the daemon did not open (<c>--fd</c>, systemd socket activation): it must be an
/// AF_UNIX stream socket, connected (one front-end) or listening (front-ends one after another,
/// told apart by <c>SO_ACCEPTCONN</c>). Anything else is refused with a message naming what it is.
/// </summary>
internal static class InheritedSocket
{
    /// <summary>Whether <paramref name="socket"/> listens; throws when it is no Unix stream socket.</summary>
    /// <param name="socket">The fd.</param>
    /// <param name="parameterName">The caller's parameter, for the exception.</param>
    /// <returns><see langword="true"/> for a listening socket, <see langword="false"/> for a connected (or unconnected) one.</returns>
    /// <exception cref="ArgumentException">The fd is closed, not open, not a socket, not AF_UNIX, or not SOCK_STREAM.</exception>
    public static bool IsListening(SafeFileHandle socket, string parameterName)
    {
        if (socket.IsInvalid || socket.IsClosed)
        {
            throw new ArgumentException("the socket handle is closed or invalid", parameterName);
        }

        string what = $"fd {socket.DangerousGetHandle()}";
        (int Domain, int Type, bool Listening) d;
        try
        {
            d = UnixSocket.Describe(socket);
        }
        catch (VhostException e) when (e.Errno == Errno.ENOTSOCK)
        {
            throw new ArgumentException($"{what} is not a socket: vhost-user runs over a Unix stream socket (connected, or listening)", parameterName, e);
        }
        catch (VhostException e) when (e.Errno == Errno.EBADF)
        {
            throw new ArgumentException($"{what} is not an open file descriptor", parameterName, e);
        }

        if (d.Domain != Interop.AF_UNIX)
        {
            throw new ArgumentException($"{what} is a socket of address family {d.Domain}, not a Unix socket (AF_UNIX): vhost-user passes fds, which only Unix sockets carry", parameterName);
        }

        if (d.Type != Interop.SOCK_STREAM)
        {
            string type = d.Type switch
            {
                2 => "datagram (SOCK_DGRAM)",
                Interop.SOCK_SEQPACKET => "SOCK_SEQPACKET",
                _ => $"type {d.Type}",
            };
            throw new ArgumentException($"{what} is a {type} Unix socket, not a stream socket (SOCK_STREAM) as vhost-user needs", parameterName);
        }

        return d.Listening;
    }
}
