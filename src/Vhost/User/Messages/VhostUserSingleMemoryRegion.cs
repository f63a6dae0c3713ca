using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The ADD_MEM_REG / REM_MEM_REG payload: a u64 of padding and one region (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserSingleMemoryRegion
{
    /// <summary>Padding; ignored on receive and sent as 0.</summary>
    public ulong Padding;

    /// <summary>The region.</summary>
    public VhostUserMemoryRegion Region;

    /// <summary>Creates the payload.</summary>
    /// <param name="region">The region.</param>
    public VhostUserSingleMemoryRegion(VhostUserMemoryRegion region)
    {
        Padding = 0;
        Region = region;
    }

    /// <summary>Syntax check of the region.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Region.IsValid();
}
