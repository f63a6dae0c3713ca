using System.Runtime.InteropServices;

namespace VhostUserBackend.Virtio;

/// <summary>An element of the split ring's used ring (<c>struct virtq_used_elem</c>, 8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VirtqUsedElement
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 8;

    /// <summary>Index of the head of the used descriptor chain (<c>id</c>).</summary>
    public uint Id;

    /// <summary>Bytes written into the device-writable part of the chain (<c>len</c>).</summary>
    public uint Length;
}
