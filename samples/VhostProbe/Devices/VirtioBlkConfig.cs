using System.Buffers.Binary;

namespace VhostProbe.Devices;

/// <summary>The decoded virtio-blk config space (virtio 1.2 §5.2.4), as far as the bytes go.</summary>
/// <param name="Capacity">Capacity in 512-byte sectors.</param>
/// <param name="SizeMax">Largest segment size (VIRTIO_BLK_F_SIZE_MAX).</param>
/// <param name="SegMax">Most segments per request (VIRTIO_BLK_F_SEG_MAX).</param>
/// <param name="BlockSize">Logical block size (VIRTIO_BLK_F_BLK_SIZE).</param>
/// <param name="PhysicalBlockExponent">Physical block = logical block &lt;&lt; this (TOPOLOGY).</param>
/// <param name="MinIoSize">Minimum I/O size in blocks (TOPOLOGY).</param>
/// <param name="OptIoSize">Optimal I/O size in blocks (TOPOLOGY).</param>
/// <param name="Writeback">Write-back cache mode (CONFIG_WCE).</param>
/// <param name="NumQueues">Queues (VIRTIO_BLK_F_MQ).</param>
/// <param name="MaxDiscardSectors">Largest discard (DISCARD), 0 when absent.</param>
/// <param name="MaxWriteZeroesSectors">Largest write-zeroes (WRITE_ZEROES), 0 when absent.</param>
public readonly record struct VirtioBlkConfig(ulong Capacity, uint SizeMax, uint SegMax, uint BlockSize, byte PhysicalBlockExponent, ushort MinIoSize, uint OptIoSize, byte Writeback, ushort NumQueues, uint MaxDiscardSectors, uint MaxWriteZeroesSectors)
{
    /// <summary>The config bytes the probe asks for.</summary>
    public const int Size = 60;

    /// <summary>Decodes <paramref name="b"/> (at least 8 bytes; missing fields read as 0).</summary>
    /// <param name="b">Config bytes from offset 0.</param>
    /// <returns>The config.</returns>
    public static VirtioBlkConfig Parse(ReadOnlySpan<byte> b)
    {
        Span<byte> c = stackalloc byte[Size];
        c.Clear();
        b[..Math.Min(b.Length, Size)].CopyTo(c);
        return new VirtioBlkConfig(
            BinaryPrimitives.ReadUInt64LittleEndian(c),
            BinaryPrimitives.ReadUInt32LittleEndian(c[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(c[12..]),
            BinaryPrimitives.ReadUInt32LittleEndian(c[20..]),
            c[24],
            BinaryPrimitives.ReadUInt16LittleEndian(c[26..]),
            BinaryPrimitives.ReadUInt32LittleEndian(c[28..]),
            c[32],
            BinaryPrimitives.ReadUInt16LittleEndian(c[34..]),
            BinaryPrimitives.ReadUInt32LittleEndian(c[36..]),
            BinaryPrimitives.ReadUInt32LittleEndian(c[48..]));
    }
}
