using System.Runtime.InteropServices;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Fuzz;

/// <summary>
/// `message`: bytes written to a <see cref="VhostUserConnection"/> over a socketpair and served by a
/// <see cref="VhostUserBackendRequestDispatcher"/> with a <see cref="PermissiveHandler"/>.
/// </summary>
/// <remarks>
/// Input: byte 0 is a mode (bits 0-1: eventfds attached to the stream's first message, bits 2-3:
/// 4 KiB memfds attached after them, bit 7: negotiate VHOST_USER_F_PROTOCOL_FEATURES and every
/// protocol feature first, so the gated requests are reachable); the rest is the raw byte stream
/// the front-end sends (at most 64 KiB), after which it shuts its writing side. The dispatcher
/// serves requests until it sees the disconnect; the replies are drained (fds attached to them are
/// discarded by the kernel). Allowed: <see cref="VhostException"/> (and so
/// <see cref="VhostUserException"/>) from a request; anything else, a request that waits 2 s on a
/// closed stream, or more requests served than the stream could hold, is a contract violation.
/// </remarks>
internal static class MessageTarget
{
    internal const int MaxStream = 64 * 1024;
    private const int TimeoutMilliseconds = 2000;

    public static void Run(ReadOnlySpan<byte> input)
    {
        // An empty input is served as an empty stream (mode 0), not skipped: every run must reach
        // instrumented code (see ChainTargets).
        byte mode = input.IsEmpty ? (byte)0 : input[0];
        ReadOnlySpan<byte> stream = input.IsEmpty ? default : input[1..];
        if (stream.Length > MaxStream)
        {
            stream = stream[..MaxStream];
        }

        (VhostUserConnection front, VhostUserConnection back) = VhostUserConnection.CreatePair();
        using var handler = new PermissiveHandler();
        using VhostUserConnection frontend = front;
        using var dispatcher = new VhostUserBackendRequestDispatcher(back, handler);
        if ((mode & 0x80) != 0)
        {
            front.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.Version1, new VhostUserU64((ulong)VhostUserVirtioFeatures.ProtocolFeatures));
            front.Send((uint)FrontendRequest.SetProtocolFeatures, VhostUserHeaderFlags.Version1, new VhostUserU64((ulong)VhostUserProtocolFeatures.AllKnown));
            dispatcher.HandleNextRequest(TimeoutMilliseconds);
            dispatcher.HandleNextRequest(TimeoutMilliseconds);
        }

        if (!stream.IsEmpty)
        {
            SendWithFds(front, stream, eventFds: mode & 3, memFds: (mode >> 2) & 3);
        }

        UnixSocket.Shutdown(front.Handle, Interop.SHUT_WR);
        Fd.SetNonBlocking(front.Handle, true);
        Serve(dispatcher, front, maxRequests: (stream.Length / VhostUserLimits.HeaderSize) + 2);
    }

    /// <summary>Serves until the disconnect; shared with the `config` target.</summary>
    internal static void Serve(VhostUserBackendRequestDispatcher dispatcher, VhostUserConnection front, int maxRequests)
    {
        Span<byte> sink = stackalloc byte[4096];
        for (int served = 0; ; served++)
        {
            if (served > maxRequests)
            {
                throw new FuzzContractException($"served {served} requests from a stream that holds at most {maxRequests}");
            }

            try
            {
                dispatcher.HandleNextRequest(TimeoutMilliseconds);
            }
            catch (VhostUserConnectionClosedException)
            {
                return;
            }
            catch (VhostUserTimeoutException e)
            {
                throw new FuzzContractException($"a request waited {TimeoutMilliseconds} ms on a stream whose writer had shut down: {e.Message}");
            }
            catch (VhostUserException)
            {
                // A refused request (reported to the front-end or not): the stream goes on.
            }
            finally
            {
                Drain(front, sink);
            }
        }
    }

    private static void Drain(VhostUserConnection front, Span<byte> sink)
    {
        while (Fd.TryRead(front.Handle, sink, out _) > 0)
        {
        }
    }

    private static void SendWithFds(VhostUserConnection front, ReadOnlySpan<byte> stream, int eventFds, int memFds)
    {
        var fds = new SafeHandle[eventFds + memFds];
        try
        {
            for (int i = 0; i < eventFds; i++)
            {
                fds[i] = new EventFd();
            }

            for (int i = 0; i < memFds; i++)
            {
                fds[eventFds + i] = Fd.CreateMemFd("fuzz-region", 4096);
            }

            front.SendRaw(stream, fds);
        }
        finally
        {
            foreach (SafeHandle? fd in fds)
            {
                fd?.Dispose();
            }
        }
    }
}
