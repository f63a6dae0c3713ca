using System.Runtime.CompilerServices;

namespace Vhost.User.Messages;

/// <summary>The 256 region sizes of a GET_SHMEM_CONFIG reply (0 = no region with that id).</summary>
[InlineArray(VhostUserLimits.MaxShmemRegions)]
public struct VhostUserShmemRegionSizes
{
    private ulong _element0;
}
