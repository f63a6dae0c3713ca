using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The head of the SET_MEM_TABLE payload; <see cref="RegionCount"/> <see cref="VhostUserMemoryRegion"/> entries follow.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserMemoryHeader
{
    /// <summary>The number of regions that follow (1 to <see cref="VhostUserLimits.MaxMemTableRegions"/>).</summary>
    public uint RegionCount;

    /// <summary>Padding; must be 0.</summary>
    public uint Padding;

    /// <summary>Syntax check: 1 to 8 regions, zero padding.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => RegionCount is >= 1 and <= VhostUserLimits.MaxMemTableRegions && Padding == 0;
}
