using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The GET_SHMEM_CONFIG reply (2056 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserShmemConfig
{
    /// <summary>The number of regions with a non-zero size.</summary>
    public uint RegionCount;

    /// <summary>Padding; sent as 0.</summary>
    public uint Padding;

    /// <summary>The size of each region, indexed by shared memory id.</summary>
    public VhostUserShmemRegionSizes MemorySizes;

    /// <summary>Syntax check: at most 256 regions, and the count matches the non-zero sizes.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
    {
        if (RegionCount > VhostUserLimits.MaxShmemRegions)
        {
            return false;
        }

        ReadOnlySpan<ulong> sizes = MemorySizes;
        int nonZero = sizes.Length - sizes.Count(0UL);
        return nonZero == RegionCount;
    }
}
