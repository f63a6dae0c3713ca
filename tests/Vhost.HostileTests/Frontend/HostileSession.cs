using System.Runtime.InteropServices;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Testing;

namespace Vhost.HostileTests.Frontend;

/// <summary>A hostile front-end: a raw connection that sends whatever it likes and drains whatever comes back.</summary>
internal sealed class HostileSession : IDisposable
{
    /// <summary>What the session acks by default (REPLY_ACK so every failure is visible).</summary>
    public const VhostUserProtocolFeatures Protocol = VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.InflightShmFd | VhostUserProtocolFeatures.ConfigureMemorySlots
        | VhostUserProtocolFeatures.Status | VhostUserProtocolFeatures.LogShmFd | VhostUserProtocolFeatures.ResetDevice
        | VhostUserProtocolFeatures.DeviceState;

    private HostileSession(VhostUserConnection connection) => Connection = connection;

    /// <summary>The virtio features <see cref="Negotiate"/> acked.</summary>
    public ulong Negotiated { get; private set; }

    /// <summary>The raw connection.</summary>
    public VhostUserConnection Connection { get; }

    /// <summary>Replies received so far.</summary>
    public int Replies { get; private set; }

    /// <summary>Connects.</summary>
    /// <param name="path">The daemon's socket.</param>
    /// <returns>The session.</returns>
    public static HostileSession Open(string path) => new(new VhostUserConnection(VhostUserConnector.Connect(path, TimeSpan.FromSeconds(5))));

    /// <summary>Waits (at most 10 s) for a daemon in client mode to connect to <paramref name="listener"/>.</summary>
    /// <param name="listener">The front-end's listening socket.</param>
    /// <returns>The session.</returns>
    public static HostileSession Accept(VhostUserListener listener)
        => new(new VhostUserConnection(listener.TryAccept(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("the daemon did not connect within 10 s")));

    /// <summary>A 12-byte header with any values.</summary>
    /// <param name="request">The request code.</param>
    /// <param name="flags">The flags word.</param>
    /// <param name="size">The size field.</param>
    /// <returns>The bytes.</returns>
    public static byte[] Header(uint request, uint flags, uint size)
    {
        var bytes = new byte[VhostUserLimits.HeaderSize];
        var h = new VhostUserHeader { Request = request, Flags = (VhostUserHeaderFlags)flags, Size = size };
        MemoryMarshal.Write(bytes, in h);
        return bytes;
    }

    /// <summary>The bytes of a struct.</summary>
    /// <typeparam name="T">A wire struct.</typeparam>
    /// <param name="value">The value.</param>
    /// <returns>Its bytes.</returns>
    public static byte[] Bytes<T>(in T value)
        where T : unmanaged
        => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    /// <summary>Sends raw bytes (fds with the first byte). A daemon that already hung up is not an error.</summary>
    /// <param name="bytes">The bytes.</param>
    /// <param name="fds">Fds to attach.</param>
    public void Raw(ReadOnlySpan<byte> bytes, params ReadOnlySpan<SafeHandle> fds)
    {
        try
        {
            Connection.SendRaw(bytes, fds);
        }
        catch (VhostUserException)
        {
        }
    }

    /// <summary>Sends a message with NEED_REPLY (unless told otherwise) and drains the answer.</summary>
    /// <param name="request">The request.</param>
    /// <param name="body">The payload.</param>
    /// <param name="fds">Fds to attach.</param>
    /// <param name="needReply">Whether to ask for an acknowledgement.</param>
    /// <returns>The first reply's u64 (or -1 for none or a non-u64 reply).</returns>
    public long Send(FrontendRequest request, ReadOnlySpan<byte> body, ReadOnlySpan<SafeHandle> fds = default, bool needReply = true)
    {
        try
        {
            Connection.Send((uint)request, needReply ? VhostUserHeaderFlags.NeedReply : VhostUserHeaderFlags.None, body, fds);
        }
        catch (VhostUserException)
        {
            return -1;
        }

        return Drain(needReply || IsGet(request) ? 2000 : 0);
    }

    /// <summary>Sends a struct payload.</summary>
    /// <typeparam name="T">A wire struct.</typeparam>
    /// <param name="request">The request.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="fds">Fds to attach.</param>
    /// <returns>As <see cref="Send(FrontendRequest, ReadOnlySpan{byte}, ReadOnlySpan{SafeHandle}, bool)"/>.</returns>
    public long Send<T>(FrontendRequest request, in T payload, params ReadOnlySpan<SafeHandle> fds)
        where T : unmanaged
        => Send(request, Bytes(payload), fds);

    /// <summary>Reads replies for up to <paramref name="firstWaitMs"/> (then briefly for more), closing any fds they carry.</summary>
    /// <param name="firstWaitMs">How long to wait for the first reply.</param>
    /// <returns>The first reply's u64 (or -1).</returns>
    public long Drain(int firstWaitMs = 50)
    {
        long first = -1;
        int wait = firstWaitMs;
        while (true)
        {
            try
            {
                if (!Connection.WaitReadable(wait))
                {
                    return first;
                }

                using VhostUserMessage m = Connection.Receive(2000);
                Replies++;
                if (first == -1 && m.Body.Length == 8)
                {
                    first = (long)MemoryMarshal.Read<ulong>(m.Body);
                }
            }
            catch (VhostUserException)
            {
                return first;
            }

            wait = 0;
        }
    }

    /// <summary>GET_FEATURES, SET_OWNER, SET_FEATURES, GET/SET_PROTOCOL_FEATURES as a normal front-end does.</summary>
    /// <param name="packed">Ack the packed ring.</param>
    /// <param name="extraProtocol">Protocol features acked beyond <see cref="Protocol"/> when offered (PAGEFAULT for the postcopy scenarios).</param>
    /// <returns>The features acked.</returns>
    public ulong Negotiate(bool packed = false, VhostUserProtocolFeatures extraProtocol = VhostUserProtocolFeatures.None)
    {
        Connection.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
        ulong offered;
        using (VhostUserMessage m = Connection.Receive(5000))
        {
            offered = m.Read<VhostUserU64>().Value;
        }

        Connection.Send((uint)FrontendRequest.GetProtocolFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
        ulong protocol;
        using (VhostUserMessage m = Connection.Receive(5000))
        {
            protocol = m.Read<VhostUserU64>().Value;
        }

        Send(FrontendRequest.SetProtocolFeatures, new VhostUserU64 { Value = protocol & (ulong)(Protocol | extraProtocol) });
        Send(FrontendRequest.SetOwner, ReadOnlySpan<byte>.Empty);
        ulong wanted = (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex | VirtioFeatures.RingIndirectDescriptors) | (ulong)VhostUserVirtioFeatures.ProtocolFeatures
            | (packed ? (ulong)VirtioFeatures.RingPacked : 0);
        ulong acked = offered & wanted;
        Send(FrontendRequest.SetFeatures, new VhostUserU64 { Value = acked });
        Negotiated = acked;
        return acked;
    }

    /// <summary>SET_MEM_TABLE for all of <paramref name="ram"/>.</summary>
    /// <param name="ram">The RAM.</param>
    /// <returns>The acknowledgement.</returns>
    public long MemoryTable(GuestRam ram)
    {
        var body = new List<byte>();
        body.AddRange(Bytes(new VhostUserMemoryHeader { RegionCount = (uint)ram.Regions.Count }));
        var fds = new SafeHandle[ram.Regions.Count];
        for (int i = 0; i < ram.Regions.Count; i++)
        {
            GuestRamRegion r = ram.Regions[i];
            body.AddRange(Bytes(new VhostUserMemoryRegion(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset)));
            fds[i] = ram.FileHandle;
        }

        return Send(FrontendRequest.SetMemTable, body.ToArray(), fds);
    }

    /// <inheritdoc/>
    public void Dispose() => Connection.Dispose();

    private static bool IsGet(FrontendRequest r) => r is FrontendRequest.GetFeatures or FrontendRequest.GetProtocolFeatures or FrontendRequest.GetQueueNum
        or FrontendRequest.GetVringBase or FrontendRequest.GetConfig or FrontendRequest.GetInflightFd or FrontendRequest.GetMaxMemSlots
        or FrontendRequest.GetStatus or FrontendRequest.GetSharedObject or FrontendRequest.GetShmemConfig or FrontendRequest.CheckDeviceState
        or FrontendRequest.SetDeviceStateFd or FrontendRequest.PostcopyAdvise or FrontendRequest.PostcopyEnd or FrontendRequest.SetLogBase;
}
