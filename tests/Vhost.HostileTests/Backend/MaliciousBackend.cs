using System.Runtime.InteropServices;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.HostileTests.Backend;

/// <summary>
/// A malicious vhost-user back-end: answers every request honestly except the one named
/// <see cref="Target"/>, which gets <see cref="Misbehave"/> instead of its reply.
/// </summary>
internal sealed class MaliciousBackend : IDisposable
{
    private readonly VhostUserListener _listener;
    private readonly Thread _thread;
    private volatile VhostUserConnection? _connection;

    /// <summary>Listens on a fresh socket and serves one front-end.</summary>
    /// <param name="target">The request to misbehave on.</param>
    /// <param name="misbehave">What to do instead of replying (gets the request and the connection).</param>
    public MaliciousBackend(FrontendRequest target, Action<VhostUserMessage, VhostUserConnection> misbehave)
    {
        Target = target;
        Misbehave = misbehave;
        SocketPath = Path.Combine(Path.GetTempPath(), $"evil-{Guid.NewGuid():N}.sock");
        _listener = new VhostUserListener(SocketPath);
        _thread = new Thread(Serve) { IsBackground = true, Name = "malicious back-end" };
        _thread.Start();
    }

    /// <summary>The socket.</summary>
    public string SocketPath { get; }

    /// <summary>The request misbehaved on.</summary>
    public FrontendRequest Target { get; }

    /// <summary>The misbehaviour.</summary>
    public Action<VhostUserMessage, VhostUserConnection> Misbehave { get; }

    /// <summary>Features offered (everything a front-end might want, protocol features included).</summary>
    public const ulong Offered = (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex) | (ulong)VhostUserVirtioFeatures.ProtocolFeatures;

    /// <summary>Protocol features offered.</summary>
    public const VhostUserProtocolFeatures OfferedProtocol = VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config
        | VhostUserProtocolFeatures.InflightShmFd | VhostUserProtocolFeatures.ConfigureMemorySlots | VhostUserProtocolFeatures.Status | VhostUserProtocolFeatures.BackendRequest
        | VhostUserProtocolFeatures.GetVringBaseInflight | VhostUserProtocolFeatures.GetVringBaseSkipDrain;

    /// <summary>Sends a reply to <paramref name="request"/> with any header values.</summary>
    public static void Reply(VhostUserConnection c, uint request, uint flags, ReadOnlySpan<byte> body, uint? size = null, params ReadOnlySpan<SafeHandle> fds)
    {
        var bytes = new byte[VhostUserLimits.HeaderSize + body.Length];
        var h = new VhostUserHeader { Request = request, Flags = (VhostUserHeaderFlags)flags, Size = size ?? (uint)body.Length };
        MemoryMarshal.Write(bytes, in h);
        body.CopyTo(bytes.AsSpan(VhostUserLimits.HeaderSize));
        c.SendRaw(bytes, fds);
    }

    /// <summary>The bytes of a u64.</summary>
    public static byte[] U64(ulong v) => BitConverter.GetBytes(v);

    /// <inheritdoc/>
    public void Dispose()
    {
        _listener.Dispose();
        _connection?.Shutdown();
        _thread.Join(5000);
        _connection?.Dispose();
        File.Delete(SocketPath);
    }

    private void Serve()
    {
        VhostUserConnection c;
        try
        {
            c = new VhostUserConnection(_listener.Accept());
        }
        catch (Exception)
        {
            return;
        }

        _connection = c;
        try
        {
            while (true)
            {
                using VhostUserMessage m = c.Receive();
                var request = (FrontendRequest)m.Header.Request;
                if (request == Target)
                {
                    Misbehave(m, c);
                    continue;
                }

                Honest(m, c, request);
            }
        }
        catch (Exception)
        {
            // The front-end went away, or the misbehaviour closed the socket.
        }
    }

    private static void Honest(VhostUserMessage m, VhostUserConnection c, FrontendRequest request)
    {
        const uint ReplyFlags = 1 | 4;
        switch (request)
        {
            case FrontendRequest.GetFeatures:
                Reply(c, m.Header.Request, ReplyFlags, U64(Offered));
                return;
            case FrontendRequest.GetProtocolFeatures:
                Reply(c, m.Header.Request, ReplyFlags, U64((ulong)OfferedProtocol));
                return;
            case FrontendRequest.GetQueueNum:
                Reply(c, m.Header.Request, ReplyFlags, U64(2));
                return;
            case FrontendRequest.GetMaxMemSlots:
                Reply(c, m.Header.Request, ReplyFlags, U64(8));
                return;
            case FrontendRequest.GetVringBase:
            case FrontendRequest.GetVringBaseSkipDrain:
                Reply(c, m.Header.Request, ReplyFlags, m.Body);
                return;
            case FrontendRequest.GetConfig:
                Reply(c, m.Header.Request, ReplyFlags, m.Body);
                return;
            case FrontendRequest.GetStatus:
                Reply(c, m.Header.Request, ReplyFlags, U64(0xf));
                return;
            default:
                if ((m.Header.Flags & VhostUserHeaderFlags.NeedReply) != 0)
                {
                    Reply(c, m.Header.Request, ReplyFlags, U64(0));
                }

                return;
        }
    }
}
