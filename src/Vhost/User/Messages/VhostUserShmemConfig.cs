using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The GET_SHMEM_CONFIG reply (2056 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserShmemConfig
{
    /// <summary>
    /// The number of regions: either the number of array entries in use (unused ids below the
    /// highest used one have size 0, as the spec allows) or the number of non-zero sizes; peers
    /// differ, and both readings are accepted.
    /// </summary>
    public uint RegionCount;

    /// <summary>Padding; sent as 0.</summary>
    public uint Padding;

    /// <summary>The size of each region, indexed by shared memory id.</summary>
    public VhostUserShmemRegionSizes MemorySizes;

    /// <summary>
    /// Syntax check: at most 256 regions, and <see cref="RegionCount"/> either counts the non-zero
    /// sizes or covers every non-zero size (no region at or past index <see cref="RegionCount"/>).
    /// </summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
    {
        if (RegionCount > VhostUserLimits.MaxShmemRegions)
        {
            return false;
        }

        ReadOnlySpan<ulong> sizes = MemorySizes;
        int nonZero = sizes.Length - sizes.Count(0UL);
        return nonZero == RegionCount || sizes[(int)RegionCount..].Count(0UL) == sizes.Length - (int)RegionCount;
    }

    /// <summary>The spec's rule that every region size is a multiple of the mmap page size (0 = unused is allowed).</summary>
    /// <param name="pageSize">The page size (<see cref="Environment.SystemPageSize"/>).</param>
    /// <returns><see langword="true"/> when every size is a multiple of <paramref name="pageSize"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="pageSize"/> is not positive.</exception>
    public readonly bool HasPageSizedRegions(int pageSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        foreach (ulong size in (ReadOnlySpan<ulong>)MemorySizes)
        {
            if (size % (ulong)pageSize != 0)
            {
                return false;
            }
        }

        return true;
    }
}
