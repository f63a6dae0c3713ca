using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>Receiving and checking replies: shared by the front-end and the back-end channel sender.</summary>
internal static class VhostUserReplies
{
    /// <summary>
    /// Receives the reply to <paramref name="request"/>: the code must echo it and the reply flag
    /// must be set (otherwise <see cref="VhostUserError.InvalidMessage"/>); more than
    /// <paramref name="maxFds"/> fds is <see cref="VhostUserError.IncorrectFds"/>.
    /// </summary>
    internal static VhostUserMessage Receive(VhostUserConnection connection, uint request, string name, TimeSpan timeout, int maxFds)
    {
        int ms = timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Min(int.MaxValue, (long)timeout.TotalMilliseconds);
        VhostUserMessage reply = connection.Receive(ms);
        try
        {
            if (reply.Header.Request != request)
            {
                throw new VhostUserException(VhostUserError.InvalidMessage, $"{name}: the reply carries request code {reply.Header.Request} instead of {request}");
            }

            if (!reply.Header.IsReply)
            {
                throw new VhostUserException(VhostUserError.InvalidMessage, $"{name}: the reply lacks the reply flag");
            }

            if (reply.Fds.Count > maxFds)
            {
                throw new VhostUserException(VhostUserError.IncorrectFds, $"{name}: the reply carries {reply.Fds.Count} fds, at most {maxFds} expected");
            }

            return reply;
        }
        catch
        {
            reply.Dispose();
            throw;
        }
    }

    /// <summary>Reads a u64 reply body (exactly 8 bytes).</summary>
    internal static ulong ReadU64(VhostUserMessage reply, string name)
    {
        if (reply.Body.Length != sizeof(ulong))
        {
            throw new VhostUserException(VhostUserError.InvalidMessage, $"{name}: the reply payload is {reply.Body.Length} bytes, expected 8");
        }

        return reply.Read<VhostUserU64>().Value;
    }

    /// <summary>Whether an exception leaves the stream out of step, so the channel cannot be used again.</summary>
    internal static bool BreaksStream(VhostUserException e) => e.Reason is not (VhostUserError.RequestFailed
        or VhostUserError.InactiveFeature or VhostUserError.InvalidParameter or VhostUserError.NotSupported);
}
