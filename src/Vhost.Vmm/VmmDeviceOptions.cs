using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.Vmm;

/// <summary>What <see cref="VmmDevice.Start"/> negotiates and lays out.</summary>
public sealed class VmmDeviceOptions
{
    /// <summary>The protocol features acked by default when offered: MQ, REPLY_ACK, CONFIG, CONFIGURE_MEM_SLOTS.</summary>
    public const VhostUserProtocolFeatures DefaultProtocolFeatures =
        VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ConfigureMemorySlots;

    /// <summary>Number of virtqueues to set up (queue 0 first). Default 1.</summary>
    public int QueueCount { get; init; } = 1;

    /// <summary>Size of every queue (a power of two). Default 128.</summary>
    public ushort QueueSize { get; init; } = 128;

    /// <summary>Guest RAM size in bytes (one memfd region at guest physical 0). Default 16 MiB.</summary>
    public ulong MemorySize { get; init; } = 16 << 20;

    /// <summary>Negotiate VIRTIO_RING_F_EVENT_IDX when offered. Default true.</summary>
    public bool EventIdx { get; init; } = true;

    /// <summary>
    /// Device-specific and transport features to ack when offered, besides VERSION_1,
    /// PROTOCOL_FEATURES and (with <see cref="EventIdx"/>) EVENT_IDX, which are always acked when offered.
    /// </summary>
    public ulong Features { get; init; }

    /// <summary>Features the back-end must offer; <see cref="VmmDevice.Start"/> fails without them. Default VERSION_1.</summary>
    public ulong RequiredFeatures { get; init; } = (ulong)VirtioFeatures.Version1;

    /// <summary>Protocol features to ack when offered. Default <see cref="DefaultProtocolFeatures"/>.</summary>
    public VhostUserProtocolFeatures ProtocolFeatures { get; init; } = DefaultProtocolFeatures;

    /// <summary>Entries per indirect table; when above 0 and the back-end offers VIRTIO_RING_F_INDIRECT_DESC, it is acked and chains may go through indirect tables. Default 0.</summary>
    public int MaxIndirectEntries { get; init; }

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (QueueCount is < 1 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(QueueCount), QueueCount, "1 to 256 queues");
        }

        if (QueueSize == 0 || !ushort.IsPow2(QueueSize) || QueueSize > 32768)
        {
            throw new ArgumentOutOfRangeException(nameof(QueueSize), QueueSize, "a power of two up to 32768");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(MaxIndirectEntries);
        if (MemorySize < 1 << 20)
        {
            throw new ArgumentOutOfRangeException(nameof(MemorySize), MemorySize, "at least 1 MiB");
        }
    }
}
