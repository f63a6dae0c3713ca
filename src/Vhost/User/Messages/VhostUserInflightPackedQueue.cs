using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>
/// The header of one queue in the packed-ring inflight region (<c>QueueRegionPacked</c>): 29 bytes
/// of fields padded to 32 by the 8-byte alignment of the descriptor array, which starts at offset
/// 32 (a flexible array: there is no trailing field).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct VhostUserInflightPackedQueue
{
    /// <summary>The virtio features acked when the region was set up.</summary>
    [FieldOffset(0)]
    public ulong Features;

    /// <summary>The layout version, 1.</summary>
    [FieldOffset(8)]
    public ushort Version;

    /// <summary>The number of descriptor entries that follow (the queue size).</summary>
    [FieldOffset(10)]
    public ushort DescriptorCount;

    /// <summary>The head of the free list.</summary>
    [FieldOffset(12)]
    public ushort FreeHead;

    /// <summary>The previous head of the free list (for crash consistency).</summary>
    [FieldOffset(14)]
    public ushort OldFreeHead;

    /// <summary>The used index.</summary>
    [FieldOffset(16)]
    public ushort UsedIndex;

    /// <summary>The previous used index.</summary>
    [FieldOffset(18)]
    public ushort OldUsedIndex;

    /// <summary>The used wrap counter.</summary>
    [FieldOffset(20)]
    public byte UsedWrapCounter;

    /// <summary>The previous used wrap counter.</summary>
    [FieldOffset(21)]
    public byte OldUsedWrapCounter;

    /// <summary>The layout version this library writes and understands.</summary>
    public const ushort CurrentVersion = 1;

    /// <summary>The bytes one queue occupies: the header plus <paramref name="queueSize"/> descriptors.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The region size of one queue.</returns>
    public static int RegionSize(int queueSize) => 32 + (32 * queueSize);

    /// <summary>Syntax check: version 1, at least one descriptor, wrap counters 0 or 1.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Version == CurrentVersion && DescriptorCount != 0 && UsedWrapCounter <= 1 && OldUsedWrapCounter <= 1;
}
