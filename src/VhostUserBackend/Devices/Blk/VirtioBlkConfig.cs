using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Blk;

/// <summary>
/// The virtio-blk configuration space (<c>struct virtio_blk_config</c>, VIRTIO 1.3 §5.2.4): 96
/// bytes, little-endian, every field at the spec's offset. A field is meaningful only when its
/// feature is offered (see each one); leave the others zero.
/// </summary>
/// <remarks>
/// A device fills one and serves its bytes (<c>MemoryMarshal.AsBytes</c>) from
/// <see cref="IVhostUserBackend.GetConfig"/>; a driver reads one with <see cref="Read"/>. Drivers
/// may read fewer bytes than <see cref="Size"/> (older devices have shorter config spaces).
/// </remarks>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioBlkConfig
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 96;

    /// <summary>Offset of <see cref="Writeback"/>, the one field a driver writes (with <see cref="VirtioBlkFeatures.ConfigWce"/>).</summary>
    public const int WritebackOffset = 32;

    /// <summary>The capacity in 512-byte sectors (<c>capacity</c>, offset 0).</summary>
    public ulong Capacity;

    /// <summary>The largest segment in bytes (<c>size_max</c>, offset 8; <see cref="VirtioBlkFeatures.SizeMax"/>).</summary>
    public uint SizeMax;

    /// <summary>The most data segments per request (<c>seg_max</c>, offset 12; <see cref="VirtioBlkFeatures.SegMax"/>).</summary>
    public uint SegMax;

    /// <summary><c>geometry.cylinders</c> (offset 16; <see cref="VirtioBlkFeatures.Geometry"/>).</summary>
    public ushort Cylinders;

    /// <summary><c>geometry.heads</c> (offset 18; <see cref="VirtioBlkFeatures.Geometry"/>).</summary>
    public byte Heads;

    /// <summary><c>geometry.sectors</c>: sectors per track (offset 19; <see cref="VirtioBlkFeatures.Geometry"/>).</summary>
    public byte SectorsPerTrack;

    /// <summary>The logical block size in bytes (<c>blk_size</c>, offset 20; <see cref="VirtioBlkFeatures.BlockSize"/>).</summary>
    public uint BlockSize;

    /// <summary>Logical blocks per physical block, as a power of two (<c>topology.physical_block_exp</c>, offset 24; <see cref="VirtioBlkFeatures.Topology"/>).</summary>
    public byte PhysicalBlockExponent;

    /// <summary>The offset of the first aligned logical block (<c>topology.alignment_offset</c>, offset 25; <see cref="VirtioBlkFeatures.Topology"/>).</summary>
    public byte AlignmentOffset;

    /// <summary>The suggested minimum I/O size in blocks (<c>topology.min_io_size</c>, offset 26; <see cref="VirtioBlkFeatures.Topology"/>).</summary>
    public ushort MinIoSize;

    /// <summary>The optimal (suggested maximum) I/O size in blocks (<c>topology.opt_io_size</c>, offset 28; <see cref="VirtioBlkFeatures.Topology"/>).</summary>
    public uint OptIoSize;

    /// <summary>1 for write-back caching, 0 for write-through (<c>writeback</c>, offset 32; <see cref="VirtioBlkFeatures.ConfigWce"/>).</summary>
    public byte Writeback;

#pragma warning disable CS0169 // The spec's unused bytes: they keep the fields after them at the spec's offsets.
    private byte _unused0;
#pragma warning restore CS0169

    /// <summary>The number of request queues (<c>num_queues</c>, offset 34; <see cref="VirtioBlkFeatures.MultiQueue"/>).</summary>
    public ushort NumQueues;

    /// <summary>The most sectors in one DISCARD segment (<c>max_discard_sectors</c>, offset 36; <see cref="VirtioBlkFeatures.Discard"/>).</summary>
    public uint MaxDiscardSectors;

    /// <summary>The most segments in one DISCARD request (<c>max_discard_seg</c>, offset 40; <see cref="VirtioBlkFeatures.Discard"/>).</summary>
    public uint MaxDiscardSegments;

    /// <summary>The DISCARD alignment in sectors (<c>discard_sector_alignment</c>, offset 44; <see cref="VirtioBlkFeatures.Discard"/>).</summary>
    public uint DiscardSectorAlignment;

    /// <summary>The most sectors in one WRITE_ZEROES segment (<c>max_write_zeroes_sectors</c>, offset 48; <see cref="VirtioBlkFeatures.WriteZeroes"/>).</summary>
    public uint MaxWriteZeroesSectors;

    /// <summary>The most segments in one WRITE_ZEROES request (<c>max_write_zeroes_seg</c>, offset 52; <see cref="VirtioBlkFeatures.WriteZeroes"/>).</summary>
    public uint MaxWriteZeroesSegments;

    /// <summary>1 when WRITE_ZEROES with <see cref="VirtioBlkDiscardFlags.Unmap"/> may deallocate (<c>write_zeroes_may_unmap</c>, offset 56; <see cref="VirtioBlkFeatures.WriteZeroes"/>).</summary>
    public byte WriteZeroesMayUnmap;

#pragma warning disable CS0169
    private byte _unused1a;
    private ushort _unused1b;
#pragma warning restore CS0169

    /// <summary>The most sectors in one SECURE_ERASE segment (<c>max_secure_erase_sectors</c>, offset 60; <see cref="VirtioBlkFeatures.SecureErase"/>).</summary>
    public uint MaxSecureEraseSectors;

    /// <summary>The most segments in one SECURE_ERASE request (<c>max_secure_erase_seg</c>, offset 64; <see cref="VirtioBlkFeatures.SecureErase"/>).</summary>
    public uint MaxSecureEraseSegments;

    /// <summary>The SECURE_ERASE alignment in sectors (<c>secure_erase_sector_alignment</c>, offset 68; <see cref="VirtioBlkFeatures.SecureErase"/>).</summary>
    public uint SecureEraseSectorAlignment;

    /// <summary><c>zoned.zone_sectors</c> (offset 72; <see cref="VirtioBlkFeatures.Zoned"/>).</summary>
    public uint ZoneSectors;

    /// <summary><c>zoned.max_open_zones</c> (offset 76; <see cref="VirtioBlkFeatures.Zoned"/>).</summary>
    public uint MaxOpenZones;

    /// <summary><c>zoned.max_active_zones</c> (offset 80; <see cref="VirtioBlkFeatures.Zoned"/>).</summary>
    public uint MaxActiveZones;

    /// <summary><c>zoned.max_append_sectors</c> (offset 84; <see cref="VirtioBlkFeatures.Zoned"/>).</summary>
    public uint MaxAppendSectors;

    /// <summary><c>zoned.write_granularity</c> (offset 88; <see cref="VirtioBlkFeatures.Zoned"/>).</summary>
    public uint WriteGranularity;

    /// <summary><c>zoned.model</c> (offset 92; <see cref="VirtioBlkFeatures.Zoned"/>).</summary>
    public byte ZonedModel;

#pragma warning disable CS0169
    private byte _unused2a;
    private ushort _unused2b;
#pragma warning restore CS0169

    /// <summary>
    /// Reads a config space from its bytes (a driver's GET_CONFIG answer): the first
    /// <see cref="Size"/> bytes, or fewer when <paramref name="bytes"/> is shorter (the fields past
    /// its end read as zero); bytes past <see cref="Size"/> are ignored.
    /// </summary>
    /// <param name="bytes">The config space from offset 0.</param>
    /// <returns>The config space.</returns>
    public static VirtioBlkConfig Read(ReadOnlySpan<byte> bytes)
    {
        VirtioBlkConfig config = default;
        bytes[..Math.Min(bytes.Length, Size)].CopyTo(MemoryMarshal.AsBytes(new Span<VirtioBlkConfig>(ref config)));
        return config;
    }
}
