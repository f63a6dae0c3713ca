using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Blk;

/// <summary>One range of a DISCARD, WRITE_ZEROES or SECURE_ERASE request (<c>struct virtio_blk_discard_write_zeroes</c>, 16 bytes, little-endian).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioBlkDiscardWriteZeroes
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 16;

    /// <summary>The first sector (<c>sector</c>, 512-byte units).</summary>
    public ulong Sector;

    /// <summary>The number of sectors (<c>num_sectors</c>).</summary>
    public uint NumSectors;

    /// <summary>The flags (<c>flags</c>).</summary>
    public VirtioBlkDiscardFlags Flags;
}
