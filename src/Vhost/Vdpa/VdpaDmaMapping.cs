namespace Vhost.Vdpa;

/// <summary>One DMA mapping of a vDPA device: <see cref="Size"/> bytes at IOVA <see cref="Iova"/> backed by the VMM's memory at <see cref="UserAddress"/>.</summary>
public readonly struct VdpaDmaMapping
{
    /// <summary>Describes a mapping.</summary>
    /// <param name="iova">The I/O virtual address (what descriptors and ring addresses hold).</param>
    /// <param name="size">The length in bytes.</param>
    /// <param name="userAddress">The VMM's virtual address of the memory (a <c>MAP_SHARED</c> file-backed mapping for VDUSE devices).</param>
    /// <param name="readOnly">Whether the device may only read the memory.</param>
    public VdpaDmaMapping(ulong iova, ulong size, ulong userAddress, bool readOnly = false)
    {
        Iova = iova;
        Size = size;
        UserAddress = userAddress;
        ReadOnly = readOnly;
    }

    /// <summary>The I/O virtual address (what descriptors and ring addresses hold).</summary>
    public ulong Iova { get; }

    /// <summary>The length in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The VMM's virtual address of the memory (a <c>MAP_SHARED</c> file-backed mapping for VDUSE devices).</summary>
    public ulong UserAddress { get; }

    /// <summary>Whether the device may only read the memory.</summary>
    public bool ReadOnly { get; }
}
