using Microsoft.Win32.SafeHandles;

namespace Vhost;

/// <summary>
/// One guest memory region as a frontend describes it to a vhost backend: where it sits in the
/// guest, how big it is, where the VMM has it mapped, and the fd (with offset) that backs it.
/// The fd stays owned by the caller.
/// </summary>
public readonly struct VhostMemoryRegionInfo
{
    /// <summary>Describes a region.</summary>
    /// <param name="guestPhysicalAddress">The guest physical address of the region.</param>
    /// <param name="size">The size in bytes.</param>
    /// <param name="userAddress">The VMM's virtual address of the region.</param>
    /// <param name="mmapOffset">The offset of the region in <paramref name="fd"/>.</param>
    /// <param name="fd">The fd backing the region (a memfd or a file); owned by the caller.</param>
    public VhostMemoryRegionInfo(ulong guestPhysicalAddress, ulong size, ulong userAddress, ulong mmapOffset, SafeFileHandle fd)
    {
        GuestPhysicalAddress = guestPhysicalAddress;
        Size = size;
        UserAddress = userAddress;
        MmapOffset = mmapOffset;
        Fd = fd;
    }

    /// <summary>The guest physical address of the region.</summary>
    public ulong GuestPhysicalAddress { get; }

    /// <summary>The size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The VMM's virtual address of the region.</summary>
    public ulong UserAddress { get; }

    /// <summary>The offset of the region in <see cref="Fd"/>.</summary>
    public ulong MmapOffset { get; }

    /// <summary>The fd backing the region (a memfd or a file); owned by the caller.</summary>
    public SafeFileHandle Fd { get; }
}
