using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>
/// The GET/SET_INFLIGHT_FD payload (<c>VhostUserInflight</c>, C layout: 20 bytes of fields
/// padded to 24, which is the size QEMU sends).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct VhostUserInflight
{
    /// <summary>The size of the inflight region in the fd.</summary>
    public ulong MmapSize;

    /// <summary>The offset of the region in the fd.</summary>
    public ulong MmapOffset;

    /// <summary>The number of queues the region covers.</summary>
    public ushort QueueCount;

    /// <summary>The size of each queue.</summary>
    public ushort QueueSize;

    /// <summary>Syntax check: at least one queue of non-zero size.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => QueueCount != 0 && QueueSize != 0 && QueueSize <= VhostUserLimits.MaxQueueSize;
}
