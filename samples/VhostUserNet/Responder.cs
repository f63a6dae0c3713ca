using System.Buffers.Binary;

namespace VhostUserNet;

/// <summary>
/// Builds the responder's answers: an ARP reply to a request for its IPv4 address, an ICMP echo
/// reply to an echo request sent to it. Everything else gets no answer. Allocation-free; every
/// length is checked against the frame before it is read.
/// </summary>
internal static class Responder
{
    /// <summary>Ethernet header bytes.</summary>
    public const int EthernetHeaderSize = 14;

    /// <summary>The shortest Ethernet frame without FCS (shorter replies are zero-padded).</summary>
    public const int MinimumFrameSize = 60;

    private const int ArpSize = 28;
    private const ushort ArpHardwareEthernet = 1;
    private const ushort ArpRequest = 1;
    private const ushort ArpReply = 2;
    private const byte IPv4Version = 4;
    private const byte ProtocolIcmp = 1;
    private const byte IcmpEchoReply = 0;
    private const byte IcmpEchoRequest = 8;
    private const byte ReplyTtl = 64;
    private const ushort FragmentMask = 0x3FFF;

    /// <summary>Builds the answer to <paramref name="frame"/>, if it asks one.</summary>
    /// <param name="frame">The Ethernet frame (no virtio-net header).</param>
    /// <param name="reply">Receives the reply frame (at least as long as <paramref name="frame"/> and <see cref="MinimumFrameSize"/>).</param>
    /// <param name="mac">The responder's MAC (6 bytes).</param>
    /// <param name="ip">The responder's IPv4 address (4 bytes).</param>
    /// <returns>The reply's length, or 0 when the frame asks nothing of the responder.</returns>
    public static int TryBuildReply(ReadOnlySpan<byte> frame, Span<byte> reply, ReadOnlySpan<byte> mac, ReadOnlySpan<byte> ip)
    {
        if (frame.Length < EthernetHeaderSize)
        {
            return 0;
        }

        return (EtherType)BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) switch
        {
            EtherType.Arp => ArpAnswer(frame, reply, mac, ip),
            EtherType.IPv4 => IcmpAnswer(frame, reply, mac, ip),
            _ => 0,
        };
    }

    private static int ArpAnswer(ReadOnlySpan<byte> frame, Span<byte> reply, ReadOnlySpan<byte> mac, ReadOnlySpan<byte> ip)
    {
        ReadOnlySpan<byte> arp = frame[EthernetHeaderSize..];
        if (arp.Length < ArpSize
            || BinaryPrimitives.ReadUInt16BigEndian(arp) != ArpHardwareEthernet
            || BinaryPrimitives.ReadUInt16BigEndian(arp[2..]) != (ushort)EtherType.IPv4
            || arp[4] != 6 || arp[5] != 4
            || BinaryPrimitives.ReadUInt16BigEndian(arp[6..]) != ArpRequest
            || !arp.Slice(24, 4).SequenceEqual(ip))
        {
            return 0;
        }

        Span<byte> r = reply[..MinimumFrameSize];
        r.Clear();
        arp.Slice(8, 6).CopyTo(r);                // destination: the sender's hardware address
        mac.CopyTo(r[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(r[12..], (ushort)EtherType.Arp);
        Span<byte> a = r[EthernetHeaderSize..];
        BinaryPrimitives.WriteUInt16BigEndian(a, ArpHardwareEthernet);
        BinaryPrimitives.WriteUInt16BigEndian(a[2..], (ushort)EtherType.IPv4);
        a[4] = 6;
        a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], ArpReply);
        mac.CopyTo(a[8..]);                        // sender hardware address
        ip.CopyTo(a[14..]);                        // sender protocol address
        arp.Slice(8, 10).CopyTo(a[18..]);          // target: the requester's hardware and protocol addresses
        return MinimumFrameSize;
    }

    private static int IcmpAnswer(ReadOnlySpan<byte> frame, Span<byte> reply, ReadOnlySpan<byte> mac, ReadOnlySpan<byte> ip)
    {
        ReadOnlySpan<byte> packet = frame[EthernetHeaderSize..];
        if (packet.Length < 20 || (packet[0] >> 4) != IPv4Version)
        {
            return 0;
        }

        int headerLength = (packet[0] & 0xF) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (headerLength < 20 || totalLength < headerLength + 8 || totalLength > packet.Length
            || packet[9] != ProtocolIcmp
            || (BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & FragmentMask) != 0
            || !packet.Slice(16, 4).SequenceEqual(ip)
            || InternetChecksum.Compute(packet[..headerLength]) != 0)
        {
            return 0;
        }

        ReadOnlySpan<byte> icmp = packet[headerLength..totalLength];
        if (icmp[0] != IcmpEchoRequest || icmp[1] != 0 || InternetChecksum.Compute(icmp) != 0)
        {
            return 0;
        }

        int length = EthernetHeaderSize + totalLength;
        Span<byte> r = reply[..Math.Max(length, MinimumFrameSize)];
        r.Clear();
        frame.Slice(6, 6).CopyTo(r);               // back to the sender
        mac.CopyTo(r[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(r[12..], (ushort)EtherType.IPv4);

        Span<byte> p = r[EthernetHeaderSize..];
        packet[..totalLength].CopyTo(p);
        p[1] = 0;                                  // TOS
        BinaryPrimitives.WriteUInt16BigEndian(p[6..], 0); // flags and fragment offset
        p[8] = ReplyTtl;
        packet.Slice(16, 4).CopyTo(p[12..]);       // source: the request's destination (us)
        packet.Slice(12, 4).CopyTo(p[16..]);       // destination: the requester
        BinaryPrimitives.WriteUInt16BigEndian(p[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(p[10..], InternetChecksum.Compute(p[..headerLength]));

        Span<byte> reIcmp = p[headerLength..totalLength];
        reIcmp[0] = IcmpEchoReply;
        BinaryPrimitives.WriteUInt16BigEndian(reIcmp[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(reIcmp[2..], InternetChecksum.Compute(reIcmp));
        return r.Length;
    }
}
