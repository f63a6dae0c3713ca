using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>
/// The header of one queue in the split-ring inflight region (<c>QueueRegionSplit</c>, 16 bytes).
/// <see cref="DescriptorCount"/> <see cref="VhostUserInflightSplitDescriptor"/> entries follow
/// immediately at offset 16 (a flexible array: there is no trailing field).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserInflightSplitQueue
{
    /// <summary>The virtio features acked when the region was set up.</summary>
    public ulong Features;

    /// <summary>The layout version, 1.</summary>
    public ushort Version;

    /// <summary>The number of descriptor entries that follow (the queue size).</summary>
    public ushort DescriptorCount;

    /// <summary>The head of the last batch of fetched descriptors.</summary>
    public ushort LastBatchHead;

    /// <summary>The used index the back-end has published.</summary>
    public ushort UsedIndex;

    /// <summary>The layout version this library writes and understands.</summary>
    public const ushort CurrentVersion = 1;

    /// <summary>The bytes one queue occupies: the header plus <paramref name="queueSize"/> descriptors.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The region size of one queue.</returns>
    public static int RegionSize(int queueSize) => 16 + (16 * queueSize);

    /// <summary>Syntax check: version 1 and at least one descriptor.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Version == CurrentVersion && DescriptorCount != 0;
}
