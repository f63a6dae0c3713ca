using System.Runtime.InteropServices;

namespace VhostUserBackend.Virtio;

/// <summary>A split-ring descriptor (<c>struct virtq_desc</c>, 16 bytes, little-endian).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VirtqDescriptor
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 16;

    /// <summary>Guest physical address of the buffer (<c>addr</c>).</summary>
    public ulong Address;

    /// <summary>Length of the buffer (<c>len</c>).</summary>
    public uint Length;

    /// <summary>Flags (<c>flags</c>).</summary>
    public VirtqDescriptorFlags Flags;

    /// <summary>Index of the next descriptor when <see cref="VirtqDescriptorFlags.Next"/> is set (<c>next</c>).</summary>
    public ushort Next;
}
