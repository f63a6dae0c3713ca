using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Blk;

/// <summary>The header that starts every virtio-blk request (the first 16 bytes of <c>struct virtio_blk_req</c>, little-endian).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioBlkRequestHeader
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 16;

    /// <summary>The request type (<c>type</c>).</summary>
    public VirtioBlkRequestType Type;

    /// <summary>Reserved (<c>reserved</c>; the legacy <c>ioprio</c>).</summary>
    public uint Reserved;

    /// <summary>The first sector, in 512-byte units whatever the block size (<c>sector</c>; IN and OUT only).</summary>
    public ulong Sector;
}
