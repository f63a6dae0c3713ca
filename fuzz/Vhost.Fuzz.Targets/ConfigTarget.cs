using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Devices.Blk;
using VhostUserBlk;

namespace Vhost.Fuzz;

/// <summary>
/// `config`: bytes become a series of GET_CONFIG / SET_CONFIG messages sent through a
/// <see cref="VhostUserBackendRequestDispatcher"/> (after CONFIG was negotiated) to the blk
/// sample's config space (<see cref="VirtioBlkDevice.ConfigSpace"/>, served as the daemon serves it).
/// </summary>
/// <remarks>
/// Input: records of [op: bit 0 SET (else GET), bit 1 NEED_REPLY, bit 2 header size one byte
/// short, bit 3 one byte long] [offset u32] [size u32] [flags u32] [n u8] [n payload bytes],
/// each sent as one message whose header size is 12 + n (adjusted by bits 2-3). Allowed as
/// <see cref="MessageTarget"/>: <see cref="VhostException"/> from a request.
/// </remarks>
internal static class ConfigTarget
{
    private const int RecordHeader = 14;
    private static readonly Lazy<BlkConfig> s_device = new(() => new BlkConfig());

    public static void Run(ReadOnlySpan<byte> input)
    {
        BlkConfig device = s_device.Value;
        device.Reset();
        (VhostUserConnection front, VhostUserConnection back) = VhostUserConnection.CreatePair();
        using var handler = new PermissiveHandler(device);
        using VhostUserConnection frontend = front;
        using var dispatcher = new VhostUserBackendRequestDispatcher(back, handler);
        front.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.Version1, new VhostUserU64((ulong)VhostUserVirtioFeatures.ProtocolFeatures));
        front.Send((uint)FrontendRequest.SetProtocolFeatures, VhostUserHeaderFlags.Version1, new VhostUserU64((ulong)VhostUserProtocolFeatures.Config));
        dispatcher.HandleNextRequest(2000);
        dispatcher.HandleNextRequest(2000);

        var stream = new List<byte>();
        Span<byte> header = stackalloc byte[VhostUserLimits.HeaderSize + VhostUserLimits.ConfigHeaderSize];
        int records = 0;
        while (input.Length >= RecordHeader && stream.Count < MessageTarget.MaxStream)
        {
            byte op = input[0];
            int n = Math.Min(input[13], input.Length - RecordHeader);
            FrontendRequest request = (op & 1) != 0 ? FrontendRequest.SetConfig : FrontendRequest.GetConfig;
            VhostUserHeaderFlags flags = VhostUserHeaderFlags.Version1 | ((op & 2) != 0 ? VhostUserHeaderFlags.NeedReply : VhostUserHeaderFlags.None);
            int bodySize = VhostUserLimits.ConfigHeaderSize + n + ((op & 4) != 0 ? -1 : 0) + ((op & 8) != 0 ? 1 : 0);
            BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)request);
            BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)flags);
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)bodySize);
            input[1..13].CopyTo(header[12..]);
            foreach (byte b in header)
            {
                stream.Add(b);
            }

            foreach (byte b in input.Slice(RecordHeader, n))
            {
                stream.Add(b);
            }

            input = input[(RecordHeader + n)..];
            records++;
        }

        if (stream.Count > 0)
        {
            front.SendRaw(stream.ToArray());
        }

        UnixSocket.Shutdown(front.Handle, Interop.SHUT_WR);
        Fd.SetNonBlocking(front.Handle, true);
        MessageTarget.Serve(dispatcher, front, maxRequests: records + (stream.Count / VhostUserLimits.HeaderSize) + 2);
    }

    /// <summary>The blk sample's device over a small temporary disk, config space only.</summary>
    private sealed class BlkConfig : IConfigDevice
    {
        private readonly VirtioBlkDevice _device = new(BlkImage.CreateTemporary(1 << 20, readOnly: false), 4, 1, "fuzz", NullLogger.Instance);

        public void Reset() => _device.ConfigSpace.WriteFromDriver(VirtioBlkConfig.WritebackOffset, [1]);

        public void GetConfig(uint offset, Span<byte> data) => _device.ConfigSpace.Read(offset, data);

        public void SetConfig(uint offset, ReadOnlySpan<byte> data) => _device.ConfigSpace.WriteFromDriver(offset, data);
    }
}
