namespace Vhost;

/// <summary>The layout of one virtqueue as SET_VRING_ADDR describes it.</summary>
/// <param name="QueueMaxSize">The largest size the device supports.</param>
/// <param name="QueueSize">The size in use.</param>
/// <param name="Flags">Ring flags (<see cref="VringFlags.Log"/>).</param>
/// <param name="DescriptorTableAddress">The descriptor table address.</param>
/// <param name="UsedRingAddress">The used ring address.</param>
/// <param name="AvailableRingAddress">The available ring address.</param>
/// <param name="LogAddress">The guest physical address for used-ring logging, when <see cref="VringFlags.Log"/> is set.</param>
public readonly record struct VringConfigData(
    ushort QueueMaxSize,
    ushort QueueSize,
    VringFlags Flags,
    ulong DescriptorTableAddress,
    ulong UsedRingAddress,
    ulong AvailableRingAddress,
    ulong? LogAddress = null)
{
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
