using System.Buffers.Binary;
using VhostUserBackend.Devices.Net;
using VhostUserNet;

namespace Vhost.IntegrationTests.UserNet;

/// <summary>The vhost-user-net sample's wire layouts and frame logic, without a front-end.</summary>
public sealed class NetSampleUnitTests
{
    private static readonly byte[] ResponderMac = [0x02, 0, 0, 0, 0, 0xfe];
    private static readonly byte[] ResponderIP = [192, 0, 2, 1];
    private static readonly byte[] GuestMac = [0x52, 0x54, 0, 0, 0, 0x01];
    private static readonly byte[] GuestIP = [192, 0, 2, 10];

    [Fact]
    public void Arp_request_for_the_responder_gets_a_reply_and_others_do_not()
    {
        byte[] request = ArpRequest(ResponderIP);
        var reply = new byte[1600];
        int n = Responder.TryBuildReply(request, reply, ResponderMac, ResponderIP);
        Assert.Equal(60, n);
        Assert.Equal(GuestMac, reply[..6]);
        Assert.Equal(ResponderMac, reply[6..12]);
        Assert.Equal(0x0806, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(12)));
        Assert.Equal(2, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(20)));  // oper = reply
        Assert.Equal(ResponderMac, reply[22..28]);
        Assert.Equal(ResponderIP, reply[28..32]);
        Assert.Equal(GuestMac, reply[32..38]);
        Assert.Equal(GuestIP, reply[38..42]);

        Assert.Equal(0, Responder.TryBuildReply(ArpRequest([192, 0, 2, 2]), reply, ResponderMac, ResponderIP));
        Assert.Equal(0, Responder.TryBuildReply(request.AsSpan(0, 30), reply, ResponderMac, ResponderIP)); // truncated
        Assert.Equal(0, Responder.TryBuildReply(request.AsSpan(0, 10), reply, ResponderMac, ResponderIP));
    }

    [Theory]
    [InlineData(56)]
    [InlineData(1400)]
    public void Echo_request_gets_an_echo_reply_with_valid_checksums(int payload)
    {
        byte[] request = EchoRequest(ResponderIP, payload);
        var reply = new byte[1600];
        int n = Responder.TryBuildReply(request, reply, ResponderMac, ResponderIP);
        Assert.Equal(request.Length, n);
        Span<byte> ip = reply.AsSpan(14, n - 14);
        Assert.Equal(GuestMac, reply[..6]);
        Assert.Equal(ResponderIP, ip[12..16].ToArray());
        Assert.Equal(GuestIP, ip[16..20].ToArray());
        Assert.Equal(0, InternetChecksum.Compute(ip[..20]));
        Assert.Equal(0, ip[20]);                                   // echo reply
        Assert.Equal(0, InternetChecksum.Compute(ip[20..]));
        Assert.Equal(request.AsSpan(14 + 24).ToArray(), ip[24..].ToArray()); // identifier, sequence and payload kept
    }

    [Fact]
    public void Malformed_or_foreign_ip_packets_get_no_reply()
    {
        var reply = new byte[1600];
        byte[] wrongDestination = EchoRequest([192, 0, 2, 2], 56);
        byte[] badIPChecksum = EchoRequest(ResponderIP, 56);
        badIPChecksum[14 + 10] ^= 0xff;
        byte[] badIcmpChecksum = EchoRequest(ResponderIP, 56);
        badIcmpChecksum[14 + 22] ^= 0xff;
        byte[] fragment = EchoRequest(ResponderIP, 56);
        fragment[14 + 6] = 0x20;                                   // more fragments
        byte[] lengthPastFrame = EchoRequest(ResponderIP, 56);
        BinaryPrimitives.WriteUInt16BigEndian(lengthPastFrame.AsSpan(14 + 2), 2000);
        foreach (byte[] f in new[] { wrongDestination, badIPChecksum, badIcmpChecksum, fragment, lengthPastFrame })
        {
            Assert.Equal(0, Responder.TryBuildReply(f, reply, ResponderMac, ResponderIP));
        }
    }

    [Fact]
    public void Mac_table_learns_moves_and_forgets()
    {
        var t = new MacTable(64);
        ulong a = MacTable.Key(GuestMac);
        Assert.Equal(-1, t.Lookup(a));
        t.Learn(a, 3);
        Assert.Equal(3, t.Lookup(a));
        t.Learn(a, 5);
        Assert.Equal(5, t.Lookup(a));
        for (int i = 0; i < 200; i++)
        {
            t.Learn(0x0200_0000_0000UL + (ulong)i, i % 4);
        }

        t.Forget(5);
        Assert.Equal(-1, t.Lookup(a));
        Assert.True(MacTable.IsGroup([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
        Assert.False(MacTable.IsGroup(GuestMac));
    }

    [Fact]
    public void Frame_queue_keeps_order_drops_when_full_and_refuses_oversized_frames()
    {
        var q = new FrameQueue(4, 64);
        Assert.False(q.TryEnqueue(new byte[65]));
        for (byte i = 0; i < 4; i++)
        {
            Assert.True(q.TryEnqueue([i, i, i, i, i, i, i, i, i, i, i, i, i]));
        }

        Assert.False(q.TryEnqueue(new byte[13]));
        for (byte i = 0; i < 4; i++)
        {
            Assert.True(q.TryPeek(out Span<byte> f));
            Assert.Equal(13, f.Length);
            Assert.Equal(i, f[0]);
            q.Advance();
        }

        Assert.False(q.TryPeek(out _));
        Assert.True(q.TryEnqueue(new byte[20]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrameQueue(3, 64));
    }

    [Fact]
    public void Frame_queue_takes_concurrent_producers_without_loss()
    {
        var q = new FrameQueue(1024, 16);
        const int PerProducer = 500;
        Parallel.For(0, 2, p =>
        {
            var f = new byte[16];
            for (int i = 0; i < PerProducer; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(f, (p * PerProducer) + i);
                Assert.True(q.TryEnqueue(f));
            }
        });
        var seen = new HashSet<int>();
        while (q.TryPeek(out Span<byte> f))
        {
            Assert.True(seen.Add(BinaryPrimitives.ReadInt32LittleEndian(f)));
            q.Advance();
        }

        Assert.Equal(2 * PerProducer, seen.Count);
    }

    internal static byte[] ArpRequest(byte[] targetIP)
    {
        var f = new byte[60];
        f.AsSpan(0, 6).Fill(0xff);
        GuestMac.CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x0806);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(14), 1);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 0x0800);
        f[18] = 6;
        f[19] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(20), 1);
        GuestMac.CopyTo(f, 22);
        GuestIP.CopyTo(f, 28);
        targetIP.CopyTo(f, 38);
        return f;
    }

    [Theory]
    [InlineData(64, true)]
    [InlineData(64, false)]
    [InlineData(60, true)]
    [InlineData(60, false)]
    [InlineData(1514, true)]
    [InlineData(1514, false)]
    public void Source_frames_carry_their_own_identification_checksum_and_sequence_and_nothing_else_changes(int frameSize, bool modernHeader)
    {
        // SourceFrame.Write stores the template's first 64 bytes from registers with the
        // per-frame fields inserted: every field must land at its offset for both header sizes,
        // the rest must be the template's, and nothing may be written past the frame.
        var source = new SourceFrame(GuestMac, GuestIP, frameSize);
        byte[] template = modernHeader ? source.Template : source.LegacyTemplate;
        int header = modernHeader ? VirtioNetHeader.Size : VirtioNetHeader.LegacySize;
        var destination = new byte[template.Length + 16];
        foreach (uint sequence in new uint[] { 0, 1, 0xFFFF, 0x1_0000, 0x1234_5678, uint.MaxValue })
        {
            destination.AsSpan().Fill(0xA5);
            source.Write(destination, template, sequence);

            Span<byte> frame = destination.AsSpan(header, frameSize);
            Span<byte> ip = frame[14..34];
            Assert.Equal((ushort)sequence, BinaryPrimitives.ReadUInt16BigEndian(ip[4..]));
            Assert.Equal(0, InternetChecksum.Compute(ip));
            Assert.Equal(source.Ipv4Checksum((ushort)sequence), BinaryPrimitives.ReadUInt16BigEndian(ip[10..]));
            Assert.Equal(sequence, BinaryPrimitives.ReadUInt32BigEndian(frame[SourceFrame.HeadersSize..]));

            // Everything but those eight bytes is the template's; the bytes after the frame are untouched.
            int[] varying = [header + 18, header + 19, header + 24, header + 25, .. Enumerable.Range(header + SourceFrame.HeadersSize, 4)];
            for (int i = 0; i < template.Length; i++)
            {
                if (!varying.Contains(i))
                {
                    Assert.True(template[i] == destination[i], $"byte {i} of the wire form differs from the template (sequence {sequence})");
                }
            }

            Assert.All(destination.AsSpan(template.Length).ToArray(), b => Assert.Equal(0xA5, b));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => source.Write(new byte[template.Length - 1], template, 1));
    }

    internal static byte[] EchoRequest(byte[] destinationIP, int payload)
    {
        var f = new byte[14 + 20 + 8 + payload];
        ResponderMac.CopyTo(f, 0);
        GuestMac.CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x0800);
        Span<byte> ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + 8 + payload));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000);    // don't fragment
        ip[8] = 64;
        ip[9] = 1;
        GuestIP.CopyTo(ip[12..]);
        destinationIP.CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], InternetChecksum.Compute(ip[..20]));
        Span<byte> icmp = ip[20..];
        icmp[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], 0x1234);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], 7);
        for (int i = 8; i < icmp.Length; i++)
        {
            icmp[i] = (byte)i;
        }

        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Compute(icmp));
        return f;
    }
}
