using System.Runtime.InteropServices;

namespace VhostUserBackend.Virtio;

/// <summary>A packed-ring descriptor (<c>struct pvirtq_desc</c>, 16 bytes, little-endian).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct PackedDescriptor
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 16;

    /// <summary>Offset of <see cref="Flags"/> within the descriptor.</summary>
    public const int FlagsOffset = 14;

    /// <summary>Guest physical address of the buffer (<c>addr</c>).</summary>
    public ulong Address;

    /// <summary>Length of the buffer; in a used descriptor, the bytes written (<c>len</c>).</summary>
    public uint Length;

    /// <summary>Buffer id (<c>id</c>).</summary>
    public ushort Id;

    /// <summary>Flags, including the avail and used bits (<c>flags</c>).</summary>
    public VirtqDescriptorFlags Flags;
}
