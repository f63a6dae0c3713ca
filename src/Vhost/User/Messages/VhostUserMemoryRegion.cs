using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>One guest memory region (32 bytes), in SET_MEM_TABLE and inside <see cref="VhostUserSingleMemoryRegion"/>.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserMemoryRegion
{
    /// <summary>The guest physical address of the region.</summary>
    public ulong GuestPhysicalAddress;

    /// <summary>The region size in bytes.</summary>
    public ulong MemorySize;

    /// <summary>The front-end's user (virtual) address of the region.</summary>
    public ulong UserAddress;

    /// <summary>The offset of the region in the fd that backs it.</summary>
    public ulong MmapOffset;

    /// <summary>Creates a region.</summary>
    /// <param name="guestPhysicalAddress">The guest physical address.</param>
    /// <param name="memorySize">The size.</param>
    /// <param name="userAddress">The front-end user address.</param>
    /// <param name="mmapOffset">The offset in the backing fd.</param>
    public VhostUserMemoryRegion(ulong guestPhysicalAddress, ulong memorySize, ulong userAddress, ulong mmapOffset)
    {
        GuestPhysicalAddress = guestPhysicalAddress;
        MemorySize = memorySize;
        UserAddress = userAddress;
        MmapOffset = mmapOffset;
    }

    /// <summary>Syntax check: non-zero size and no address range wraps around 2^64.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
        => MemorySize != 0
           && GuestPhysicalAddress <= ulong.MaxValue - MemorySize + 1
           && UserAddress <= ulong.MaxValue - MemorySize + 1
           && MmapOffset <= ulong.MaxValue - MemorySize + 1;
}
