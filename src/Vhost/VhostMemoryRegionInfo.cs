using Microsoft.Win32.SafeHandles;

namespace Vhost;

/// <summary>
/// One guest memory region as a frontend describes it to a vhost backend: where it sits in the
/// guest, how big it is, where the VMM has it mapped, and the fd (with offset) that backs it.
/// The fd stays owned by the caller.
/// </summary>
/// <param name="GuestPhysicalAddress">The guest physical address of the region.</param>
/// <param name="Size">The size in bytes.</param>
/// <param name="UserAddress">The VMM's virtual address of the region.</param>
/// <param name="MmapOffset">The offset of the region in <paramref name="Fd"/>.</param>
/// <param name="Fd">The fd backing the region (a memfd or a file); owned by the caller.</param>
public readonly record struct VhostMemoryRegionInfo(ulong GuestPhysicalAddress, ulong Size, ulong UserAddress, ulong MmapOffset, SafeFileHandle Fd);
