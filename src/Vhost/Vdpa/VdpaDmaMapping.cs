namespace Vhost.Vdpa;

/// <summary>One DMA mapping of a vDPA device: <paramref name="Size"/> bytes at IOVA <paramref name="Iova"/> backed by the VMM's memory at <paramref name="UserAddress"/>.</summary>
/// <param name="Iova">The I/O virtual address (what descriptors and ring addresses hold).</param>
/// <param name="Size">The length in bytes.</param>
/// <param name="UserAddress">The VMM's virtual address of the memory (a <c>MAP_SHARED</c> file-backed mapping for VDUSE devices).</param>
/// <param name="ReadOnly">Whether the device may only read the memory.</param>
public readonly record struct VdpaDmaMapping(ulong Iova, ulong Size, ulong UserAddress, bool ReadOnly = false);
