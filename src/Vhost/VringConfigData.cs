namespace Vhost;

/// <summary>The layout of one virtqueue as SET_VRING_ADDR describes it.</summary>
public readonly struct VringConfigData
{
    /// <summary>Creates a ring layout.</summary>
    /// <param name="queueMaxSize">The largest size the device supports.</param>
    /// <param name="queueSize">The size in use.</param>
    /// <param name="flags">Ring flags (<see cref="VringFlags.Log"/>).</param>
    /// <param name="descriptorTableAddress">The descriptor table address.</param>
    /// <param name="usedRingAddress">The used ring address.</param>
    /// <param name="availableRingAddress">The available ring address.</param>
    /// <param name="logAddress">The guest physical address for used-ring logging, when <see cref="VringFlags.Log"/> is set.</param>
    public VringConfigData(
        ushort queueMaxSize,
        ushort queueSize,
        VringFlags flags,
        ulong descriptorTableAddress,
        ulong usedRingAddress,
        ulong availableRingAddress,
        ulong? logAddress = null)
    {
        QueueMaxSize = queueMaxSize;
        QueueSize = queueSize;
        Flags = flags;
        DescriptorTableAddress = descriptorTableAddress;
        UsedRingAddress = usedRingAddress;
        AvailableRingAddress = availableRingAddress;
        LogAddress = logAddress;
    }

    /// <summary>The largest size the device supports.</summary>
    public ushort QueueMaxSize { get; }

    /// <summary>The size in use.</summary>
    public ushort QueueSize { get; }

    /// <summary>Ring flags (<see cref="VringFlags.Log"/>).</summary>
    public VringFlags Flags { get; }

    /// <summary>The descriptor table address.</summary>
    public ulong DescriptorTableAddress { get; }

    /// <summary>The used ring address.</summary>
    public ulong UsedRingAddress { get; }

    /// <summary>The available ring address.</summary>
    public ulong AvailableRingAddress { get; }

    /// <summary>The guest physical address for used-ring logging, when <see cref="VringFlags.Log"/> is set.</summary>
    public ulong? LogAddress { get; }

    /// <summary>
    /// Whether the layout is consistent: non-zero power-of-two size within the maximum, ring
    /// alignment (descriptor table 16, used ring 4, available ring 2 bytes), and a log address
    /// exactly when the log flag is set.
    /// </summary>
    /// <returns><see langword="true"/> when consistent.</returns>
    public bool IsValid()
        => QueueSize != 0 && QueueSize <= QueueMaxSize && (QueueSize & (QueueSize - 1)) == 0
           && (DescriptorTableAddress & 0xF) == 0 && (UsedRingAddress & 0x3) == 0 && (AvailableRingAddress & 0x1) == 0
           && ((Flags & VringFlags.Log) != 0) == LogAddress.HasValue
           && (Flags & ~VringFlags.Log) == 0;
}
