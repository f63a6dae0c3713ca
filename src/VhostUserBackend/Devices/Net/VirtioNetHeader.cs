using System.Runtime.InteropServices;
using Vhost.Virtio;

namespace VhostUserBackend.Devices.Net;

/// <summary>
/// The header before every frame on a virtio-net queue (<c>struct virtio_net_hdr</c>, VIRTIO 1.3
/// §5.1.6) in its 12-byte form, with <see cref="NumBuffers"/>: the form when
/// <see cref="VirtioFeatures.Version1"/> or <see cref="VirtioNetFeatures.MergeableRxBuffers"/> is
/// negotiated. Without either (a legacy driver) the header is the first <see cref="LegacySize"/>
/// bytes: <see cref="GetSize"/> says which. Little-endian.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioNetHeader
{
    /// <summary>The size in bytes, with <see cref="NumBuffers"/>.</summary>
    public const int Size = 12;

    /// <summary>The size without <see cref="NumBuffers"/> (neither VERSION_1 nor MRG_RXBUF negotiated).</summary>
    public const int LegacySize = 10;

    /// <summary>Offset of <see cref="NumBuffers"/>.</summary>
    public const int NumBuffersOffset = 10;

    /// <summary>The flags (<c>flags</c>).</summary>
    public VirtioNetHeaderFlags Flags;

    /// <summary>The GSO type (<c>gso_type</c>), with <see cref="VirtioNetGsoType.Ecn"/> possibly or-ed in.</summary>
    public VirtioNetGsoType GsoType;

    /// <summary>The length of the headers to copy into each segment (<c>hdr_len</c>).</summary>
    public ushort HeaderLength;

    /// <summary>The segment size of a GSO frame (<c>gso_size</c>).</summary>
    public ushort GsoSize;

    /// <summary>Where checksumming starts, from the start of the Ethernet frame (<c>csum_start</c>).</summary>
    public ushort CsumStart;

    /// <summary>Where the checksum goes, from <see cref="CsumStart"/> (<c>csum_offset</c>).</summary>
    public ushort CsumOffset;

    /// <summary>The RX buffers (chains) the frame spans (<c>num_buffers</c>): with MRG_RXBUF the device sets it; otherwise 1, or absent in the legacy form.</summary>
    public ushort NumBuffers;

    /// <summary>The header size on the queues for the negotiated features: <see cref="Size"/> with VERSION_1 or MRG_RXBUF, <see cref="LegacySize"/> otherwise.</summary>
    /// <param name="negotiatedFeatures">The features the driver acknowledged (generic and virtio-net bits).</param>
    /// <returns>12 or 10.</returns>
    public static int GetSize(ulong negotiatedFeatures)
        => (negotiatedFeatures & ((ulong)VirtioFeatures.Version1 | (ulong)VirtioNetFeatures.MergeableRxBuffers)) != 0 ? Size : LegacySize;
}
