using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The VRING_HOST_NOTIFIER_MSG payload (24 bytes): ring index and no-fd flag, and the area inside the fd.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserVringArea
{
    /// <summary>Bits 0-7 the ring index, bit 8 <see cref="VhostUserLimits.VringNoFdFlag"/> (remove the notifier).</summary>
    public ulong IndexAndFlags;

    /// <summary>The size of the notifier area.</summary>
    public ulong Size;

    /// <summary>The offset of the area in the fd.</summary>
    public ulong Offset;

    /// <summary>The ring index.</summary>
    public readonly int QueueIndex => (int)(IndexAndFlags & VhostUserLimits.VringIndexMask);

    /// <summary>Whether the no-fd flag is set (the notifier is removed).</summary>
    public readonly bool HasNoFd => (IndexAndFlags & VhostUserLimits.VringNoFdFlag) != 0;

    /// <summary>Syntax check: only the index and no-fd bits; an area with an fd has a non-wrapping size.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
        => (IndexAndFlags & ~(VhostUserLimits.VringIndexMask | VhostUserLimits.VringNoFdFlag)) == 0
           && (HasNoFd || Offset <= ulong.MaxValue - Size);
}
