using System.Runtime.InteropServices;

namespace VhostUserNet;

/// <summary>
/// <c>struct virtio_net_hdr</c> (virtio 1.2 section 5.1.6) in its 12-byte form (with
/// <c>num_buffers</c>, used when VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF is negotiated).
/// Without either, the header on the ring is the first <see cref="LegacySize"/> bytes. Fields are
/// little-endian (the sample refuses to start on a big-endian host).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VirtioNetHeader
{
    /// <summary>Bytes with <c>num_buffers</c>.</summary>
    public const int Size = 12;

    /// <summary>Bytes without <c>num_buffers</c> (neither VERSION_1 nor MRG_RXBUF).</summary>
    public const int LegacySize = 10;

    /// <summary><c>flags</c>.</summary>
    public VirtioNetHeaderFlags Flags;

    /// <summary><c>gso_type</c> (a <see cref="VirtioNetGsoType"/>, with <see cref="VirtioNetGsoType.Ecn"/> possibly or-ed in).</summary>
    public byte GsoType;

    /// <summary><c>hdr_len</c>.</summary>
    public ushort HeaderLength;

    /// <summary><c>gso_size</c>.</summary>
    public ushort GsoSize;

    /// <summary><c>csum_start</c>: where checksumming starts, from the start of the Ethernet frame.</summary>
    public ushort CsumStart;

    /// <summary><c>csum_offset</c>: where the checksum goes, from <see cref="CsumStart"/>.</summary>
    public ushort CsumOffset;

    /// <summary><c>num_buffers</c>: RX buffers the frame spans (MRG_RXBUF); 1 otherwise.</summary>
    public ushort NumBuffers;
}
