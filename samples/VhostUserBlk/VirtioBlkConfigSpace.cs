using System.Buffers.Binary;

namespace VhostUserBlk;

/// <summary>
/// The virtio-blk config space (<c>struct virtio_blk_config</c>, virtio 1.2 §5.2.4), written
/// little-endian at the spec's offsets. Fields past <see cref="Size"/> (secure erase, zoned) read as zero.
/// </summary>
internal static class VirtioBlkConfigSpace
{
    /// <summary>The bytes up to and including <c>write_zeroes_may_unmap</c> and its padding.</summary>
    public const int Size = 60;

    /// <summary>Offset of <c>capacity</c> (le64, sectors).</summary>
    public const int CapacityOffset = 0;

    /// <summary>Offset of <c>size_max</c> (le32).</summary>
    public const int SizeMaxOffset = 8;

    /// <summary>Offset of <c>seg_max</c> (le32).</summary>
    public const int SegMaxOffset = 12;

    /// <summary>Offset of <c>blk_size</c> (le32).</summary>
    public const int BlockSizeOffset = 20;

    /// <summary>Offset of <c>writeback</c> (u8).</summary>
    public const int WritebackOffset = 32;

    /// <summary>Offset of <c>num_queues</c> (le16).</summary>
    public const int NumQueuesOffset = 34;

    /// <summary>Offset of <c>max_discard_sectors</c> (le32).</summary>
    public const int MaxDiscardSectorsOffset = 36;

    /// <summary>Offset of <c>max_discard_seg</c> (le32).</summary>
    public const int MaxDiscardSegOffset = 40;

    /// <summary>Offset of <c>discard_sector_alignment</c> (le32).</summary>
    public const int DiscardSectorAlignmentOffset = 44;

    /// <summary>Offset of <c>max_write_zeroes_sectors</c> (le32).</summary>
    public const int MaxWriteZeroesSectorsOffset = 48;

    /// <summary>Offset of <c>max_write_zeroes_seg</c> (le32).</summary>
    public const int MaxWriteZeroesSegOffset = 52;

    /// <summary>Offset of <c>write_zeroes_may_unmap</c> (u8).</summary>
    public const int WriteZeroesMayUnmapOffset = 56;

    /// <summary>Fills <paramref name="config"/> (at least <see cref="Size"/> bytes, cleared first).</summary>
    public static void Write(Span<byte> config, ulong capacity, uint sizeMax, uint segMax, uint blockSize, bool writeback, ushort queues, uint maxDiscardSectors, uint maxDiscardSegments, uint discardAlignment, uint maxWriteZeroesSectors, uint maxWriteZeroesSegments, bool mayUnmap)
    {
        config.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(config[CapacityOffset..], capacity);
        BinaryPrimitives.WriteUInt32LittleEndian(config[SizeMaxOffset..], sizeMax);
        BinaryPrimitives.WriteUInt32LittleEndian(config[SegMaxOffset..], segMax);
        BinaryPrimitives.WriteUInt32LittleEndian(config[BlockSizeOffset..], blockSize);
        config[WritebackOffset] = writeback ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(config[NumQueuesOffset..], queues);
        BinaryPrimitives.WriteUInt32LittleEndian(config[MaxDiscardSectorsOffset..], maxDiscardSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config[MaxDiscardSegOffset..], maxDiscardSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(config[DiscardSectorAlignmentOffset..], discardAlignment);
        BinaryPrimitives.WriteUInt32LittleEndian(config[MaxWriteZeroesSectorsOffset..], maxWriteZeroesSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config[MaxWriteZeroesSegOffset..], maxWriteZeroesSegments);
        config[WriteZeroesMayUnmapOffset] = mayUnmap ? (byte)1 : (byte)0;
    }
}
