using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using VhostUserBackend.Devices.Net;

namespace VhostUserNet;

/// <summary>
/// The source mode's frames, built per packet the way DPDK testpmd's <c>txonly</c> builds its
/// own: a broadcast IPv4/UDP datagram from the configured MAC and IPv4 address to
/// 255.255.255.255, UDP port 9 (discard) to 9. Each frame gets its Ethernet, IPv4 and UDP
/// headers from a template (as <c>txonly</c> copies its header templates) with an IPv4
/// identification and a header checksum of its own (computed per packet from the header's words,
/// never read back from a buffer: <c>txonly</c> computes its checksum once), and a sequence
/// number as the first four payload bytes; the rest of the payload is a fill pattern. The UDP
/// checksum is 0 (none), as in <c>txonly</c>.
/// </summary>
/// <remarks>
/// Nothing is stored into the destination and loaded back: a copy that loads bytes just stored
/// cannot take them from the store buffer and waits for every earlier store, the previous
/// frames' cache misses included (see <see cref="NetPort"/>'s source path).
/// </remarks>
internal sealed class SourceFrame
{
    /// <summary>Ethernet, IPv4 and UDP header bytes; the sequence number follows them.</summary>
    public const int HeadersSize = Responder.EthernetHeaderSize + Ipv4HeaderSize + UdpHeaderSize;

    private const int Ipv4HeaderSize = 20;
    private const int UdpHeaderSize = 8;
    private const int Ipv4Offset = Responder.EthernetHeaderSize;
    private const int UdpOffset = Ipv4Offset + Ipv4HeaderSize;
    private const ushort VersionAndLength = 0x4500;   // version 4, 5 words, TOS 0
    private const ushort TtlAndProtocol = (64 << 8) | 17; // TTL 64, UDP
    private const ushort DiscardPort = 9;
    private const uint Broadcast = 0xFFFF_FFFF;

    /// <summary>The bytes <see cref="Write"/> stores from registers: the virtio-net header, the headers and the sequence number fit (at most 12 + 46).</summary>
    private const int HeadSize = 64;

    private readonly ushort _macHigh;
    private readonly uint _macLow;
    private readonly uint _sourceAddress;
    private readonly ushort _ipLength;
    private readonly ushort _udpLength;
    private readonly uint _constantSum;

    /// <summary>Prepares frames of <paramref name="frameSize"/> bytes from <paramref name="mac"/> and <paramref name="ip"/>.</summary>
    /// <param name="mac">The source MAC (6 bytes).</param>
    /// <param name="ip">The source IPv4 address (4 bytes).</param>
    /// <param name="frameSize">Ethernet frame bytes without FCS (60-1514).</param>
    public SourceFrame(ReadOnlySpan<byte> mac, ReadOnlySpan<byte> ip, int frameSize)
    {
        if (frameSize is < Responder.MinimumFrameSize or > 1514)
        {
            throw new ArgumentOutOfRangeException(nameof(frameSize), frameSize, "the source frame size must be 60 to 1514 bytes");
        }

        FrameSize = frameSize;
        _macHigh = BinaryPrimitives.ReadUInt16BigEndian(mac);
        _macLow = BinaryPrimitives.ReadUInt32BigEndian(mac[2..]);
        _sourceAddress = BinaryPrimitives.ReadUInt32BigEndian(ip);
        _ipLength = (ushort)(frameSize - Ipv4Offset);
        _udpLength = (ushort)(frameSize - UdpOffset);

        // The words of the IPv4 header that are the same in every frame (all but the identification and the checksum).
        _constantSum = (uint)VersionAndLength + _ipLength + TtlAndProtocol
            + (_sourceAddress >> 16) + (_sourceAddress & 0xFFFF) + (Broadcast >> 16) + (Broadcast & 0xFFFF);
        Template = BuildTemplate(VirtioNetHeader.Size);
        LegacyTemplate = BuildTemplate(VirtioNetHeader.LegacySize);
    }

    /// <summary>Ethernet frame bytes (without the virtio-net header).</summary>
    public int FrameSize { get; }

    /// <summary>The 12-byte virtio-net header (num_buffers 1) and a frame whose payload holds the fill pattern.</summary>
    public byte[] Template { get; }

    /// <summary>The same with the 10-byte legacy header.</summary>
    public byte[] LegacyTemplate { get; }

    /// <summary>The IPv4 header checksum of the frame with identification <paramref name="identification"/>.</summary>
    /// <param name="identification">The IPv4 identification.</param>
    /// <returns>The checksum field's value.</returns>
    public ushort Ipv4Checksum(ushort identification)
    {
        uint sum = _constantSum + identification;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>
    /// Writes frame number <paramref name="sequence"/> with its virtio-net header into
    /// <paramref name="destination"/> (at least <c>template.Length</c> bytes): the template's
    /// first 64 bytes (the virtio-net header, the Ethernet, IPv4 and UDP headers and the sequence
    /// number's place) loaded into four vector registers, the frame's IPv4 identification, header
    /// checksum and sequence number inserted there, stored with four 16-byte stores after the rest
    /// of the payload was copied from the template.
    /// </summary>
    /// <remarks>
    /// Guest RX buffers are lines the driver owns (a cache miss on every frame). Written field by
    /// field (about twenty 2- and 4-byte stores per frame) the stores queue up behind those misses
    /// and fill the store buffer: measured, 6.1 Mpps and 17 % of the worker's samples in the
    /// header stores, against 12-13 Mpps before per-packet headers existed.
    /// </remarks>
    /// <param name="destination">Where the wire form goes (a guest RX buffer, or a stack copy of one).</param>
    /// <param name="template">Which of <see cref="Template"/> or <see cref="LegacyTemplate"/> (the header size the driver negotiated).</param>
    /// <param name="sequence">The frame's sequence number.</param>
    public void Write(Span<byte> destination, ReadOnlySpan<byte> template, uint sequence)
    {
        // Both bounds checked here, once: the template holds a whole frame (at least 70 bytes).
        destination = destination[..template.Length];
        ushort identification = (ushort)sequence;
        ushort checksum = BinaryPrimitives.ReverseEndianness(Ipv4Checksum(identification));
        identification = BinaryPrimitives.ReverseEndianness(identification);
        ushort sequenceHigh = BinaryPrimitives.ReverseEndianness((ushort)(sequence >> 16));
        ushort sequenceLow = BinaryPrimitives.ReverseEndianness((ushort)sequence);

        ref byte source = ref MemoryMarshal.GetReference(template);
        Vector128<ushort> v0 = Vector128.LoadUnsafe(ref source).AsUInt16();
        Vector128<ushort> v1 = Vector128.LoadUnsafe(ref source, 16).AsUInt16();
        Vector128<ushort> v2 = Vector128.LoadUnsafe(ref source, 32).AsUInt16();
        Vector128<ushort> v3 = Vector128.LoadUnsafe(ref source, 48).AsUInt16();

        // Element = byte offset / 2: identification at header + 18, checksum at header + 24,
        // sequence number at header + 42 (HeadersSize).
        if (template.Length - FrameSize == VirtioNetHeader.Size)
        {
            v1 = v1.WithElement(7, identification);
            v2 = v2.WithElement(2, checksum);
            v3 = v3.WithElement(3, sequenceHigh).WithElement(4, sequenceLow);
        }
        else
        {
            v1 = v1.WithElement(6, identification);
            v2 = v2.WithElement(1, checksum);
            v3 = v3.WithElement(2, sequenceHigh).WithElement(3, sequenceLow);
        }

        // The payload after the head first: a short one (a 60- or 64-byte frame) as one 16-byte
        // store ending at the frame's end, which may overlap the head's last bytes: the head's
        // stores come after it in program order, so the inserted fields win.
        ref byte target = ref MemoryMarshal.GetReference(destination);
        int length = template.Length;
        if (length <= HeadSize + 16)
        {
            Vector128.LoadUnsafe(ref source, (nuint)(length - 16)).StoreUnsafe(ref target, (nuint)(length - 16));
        }
        else
        {
            template[HeadSize..].CopyTo(destination[HeadSize..]);
        }

        v0.AsByte().StoreUnsafe(ref target);
        v1.AsByte().StoreUnsafe(ref target, 16);
        v2.AsByte().StoreUnsafe(ref target, 32);
        v3.AsByte().StoreUnsafe(ref target, 48);
    }

    /// <summary>Writes the Ethernet, IPv4 and UDP headers of the frame with identification <paramref name="identification"/>.</summary>
    private void WriteHeaders(Span<byte> frame, ushort identification)
    {
        BinaryPrimitives.WriteUInt32BigEndian(frame, Broadcast);                 // destination MAC
        BinaryPrimitives.WriteUInt16BigEndian(frame[4..], 0xFFFF);
        BinaryPrimitives.WriteUInt16BigEndian(frame[6..], _macHigh);             // source MAC
        BinaryPrimitives.WriteUInt32BigEndian(frame[8..], _macLow);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], (ushort)EtherType.IPv4);

        Span<byte> ip = frame[Ipv4Offset..];
        BinaryPrimitives.WriteUInt16BigEndian(ip, VersionAndLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], _ipLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], identification);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0);                        // flags, fragment offset
        BinaryPrimitives.WriteUInt16BigEndian(ip[8..], TtlAndProtocol);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Ipv4Checksum(identification));
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], _sourceAddress);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], Broadcast);

        Span<byte> udp = frame[UdpOffset..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, DiscardPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], DiscardPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], _udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], 0);                       // no checksum
    }

    /// <summary>A header (num_buffers 1 in the 12-byte form) and a frame: headers of frame 0, then the fill pattern.</summary>
    private byte[] BuildTemplate(int headerSize)
    {
        var entry = new byte[headerSize + FrameSize];
        if (headerSize == VirtioNetHeader.Size)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(10), 1);
        }

        Span<byte> frame = entry.AsSpan(headerSize);
        WriteHeaders(frame, 0);
        for (int i = HeadersSize + 4; i < frame.Length; i++)
        {
            frame[i] = (byte)i;
        }

        return entry;
    }
}
