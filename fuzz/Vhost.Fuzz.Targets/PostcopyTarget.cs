using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend;

namespace Vhost.Fuzz;

/// <summary>
/// `postcopy`: the postcopy messages in any order, against a real <see cref="VhostUserDaemon"/>
/// with <see cref="VhostUserDaemonOptions.Postcopy"/> on (so they reach the userfaultfd code, not a
/// stand-in handler), over a Unix socket.
/// </summary>
/// <remarks>
/// Input: one operation per byte (at most 64): bits 0-2 pick POSTCOPY_ADVISE, POSTCOPY_LISTEN,
/// POSTCOPY_END, SET_MEM_TABLE (one 1 MiB memfd region), the front-end's u64 0 acknowledgement,
/// a u64 1 rejection, ADD_MEM_REG, or GET_FEATURES; bit 3 sets NEED_REPLY; bits 4-7 pick the
/// region's guest address (in 1 MiB steps) so tables differ. Replies are drained (their fds, the
/// userfaultfd copies, are closed). The daemon may refuse anything or drop the connection;
/// afterwards a new connection must get GET_FEATURES answered within 5 s (it is alive and its
/// control thread is not stuck), otherwise the run is a contract violation.
/// </remarks>
internal static class PostcopyTarget
{
    private const int MaxOperations = 64;
    private const ulong RegionSize = 1 << 20;
    private static readonly Lazy<(VhostUserDaemon Daemon, string Path)> s_daemon = new(Start);

    public static void Run(ReadOnlySpan<byte> input)
    {
        string path = s_daemon.Value.Path;
        using (var c = new VhostUserConnection(VhostUserConnector.Connect(path, TimeSpan.FromSeconds(5))))
        {
            Negotiate(c);
            foreach (byte op in input.Length > MaxOperations ? input[..MaxOperations] : input)
            {
                if (!Apply(c, op))
                {
                    break;
                }
            }
        }

        using var probe = new VhostUserConnection(VhostUserConnector.Connect(path, TimeSpan.FromSeconds(5)));
        try
        {
            probe.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.Version1, ReadOnlySpan<byte>.Empty);
            using VhostUserMessage reply = probe.Receive(5000);
        }
        catch (VhostUserException e)
        {
            throw new FuzzContractException($"the daemon did not answer GET_FEATURES after the sequence: {e.Message}");
        }
    }

    private static (VhostUserDaemon, string) Start()
    {
        string path = Path.Combine(Path.GetTempPath(), $"fuzz-postcopy-{Environment.ProcessId}.sock");
        var daemon = new VhostUserDaemon(new IdleDevice(), new VhostUserDaemonOptions { Postcopy = true });
        daemon.Start(path);
        return (daemon, path);
    }

    private static void Negotiate(VhostUserConnection c)
    {
        c.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.Version1, new VhostUserU64((ulong)VirtioFeatures.Version1 | (ulong)VhostUserVirtioFeatures.ProtocolFeatures));
        c.Send((uint)FrontendRequest.SetProtocolFeatures, VhostUserHeaderFlags.Version1, new VhostUserU64((ulong)(VhostUserProtocolFeatures.PageFault | VhostUserProtocolFeatures.ReplyAck)));
        c.Send((uint)FrontendRequest.SetOwner, VhostUserHeaderFlags.Version1, ReadOnlySpan<byte>.Empty);
    }

    /// <summary>Sends one operation and drains its replies; false when the daemon hung up.</summary>
    private static bool Apply(VhostUserConnection c, byte op)
    {
        VhostUserHeaderFlags flags = VhostUserHeaderFlags.Version1 | ((op & 8) != 0 ? VhostUserHeaderFlags.NeedReply : VhostUserHeaderFlags.None);
        ulong gpa = (ulong)(op >> 4) * RegionSize;
        try
        {
            switch (op & 7)
            {
                case 0: c.Send((uint)FrontendRequest.PostcopyAdvise, flags, ReadOnlySpan<byte>.Empty); break;
                case 1: c.Send((uint)FrontendRequest.PostcopyListen, flags, ReadOnlySpan<byte>.Empty); break;
                case 2: c.Send((uint)FrontendRequest.PostcopyEnd, flags, ReadOnlySpan<byte>.Empty); break;
                case 3:
                {
                    using SafeFileHandle ram = Fd.CreateMemFd("fuzz-postcopy-ram", (long)RegionSize);
                    byte[] body = new byte[VhostUserLimits.MemoryHeaderSize + VhostUserLimits.MemoryRegionSize];
                    MemoryMarshal.Write(body, new VhostUserMemoryHeader { RegionCount = 1 });
                    MemoryMarshal.Write(body.AsSpan(VhostUserLimits.MemoryHeaderSize), new VhostUserMemoryRegion(gpa, RegionSize, 0x7000_0000_0000 + gpa, 0));
                    c.Send((uint)FrontendRequest.SetMemTable, flags, body, [ram]);
                    break;
                }

                case 4: c.Send((uint)FrontendRequest.SetMemTable, flags, new VhostUserU64(0)); break;
                case 5: c.Send((uint)FrontendRequest.SetMemTable, flags, new VhostUserU64(1)); break;
                case 6:
                {
                    using SafeFileHandle ram = Fd.CreateMemFd("fuzz-postcopy-ram", (long)RegionSize);
                    c.Send((uint)FrontendRequest.AddMemReg, flags, new VhostUserSingleMemoryRegion(new VhostUserMemoryRegion(gpa, RegionSize, 0x7000_0000_0000 + gpa, 0)), [ram]);
                    break;
                }

                default: c.Send((uint)FrontendRequest.GetFeatures, flags, ReadOnlySpan<byte>.Empty); break;
            }

            // Every reply this operation may cause arrives within the first wait; more are drained briefly.
            for (int wait = 200; c.WaitReadable(wait); wait = 0)
            {
                using VhostUserMessage reply = c.Receive(2000);
            }

            return true;
        }
        catch (VhostUserException)
        {
            return false;
        }
    }

    /// <summary>A device with one ring that is never started here.</summary>
    private sealed class IdleDevice : IVhostUserBackend
    {
        public int QueueCount => 1;

        public ushort MaxQueueSize => 256;

        public ulong Features => (ulong)VirtioFeatures.Version1;

        public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
        {
        }
    }
}
