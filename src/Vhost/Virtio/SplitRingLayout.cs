namespace Vhost.Virtio;

/// <summary>
/// The byte sizes of a split virtqueue's three areas (VIRTIO 1.3 §2.7), the one place they are
/// computed: the kernel frontend checks a ring's addresses with them, the daemon's split queue maps
/// its rings with them (and a packed ring's descriptor table has the same 16-byte entries).
/// </summary>
internal static class SplitRingLayout
{
    /// <summary>Bytes of the descriptor table: 16 per entry.</summary>
    /// <param name="size">The queue size.</param>
    /// <returns>16 × size.</returns>
    public static ulong DescriptorTableSize(uint size) => 16UL * size;

    /// <summary>Bytes of the available (driver) ring: flags, idx, the entries and used_event.</summary>
    /// <param name="size">The queue size.</param>
    /// <returns>6 + 2 × size.</returns>
    public static ulong AvailableRingSize(uint size) => 6 + (2UL * size);

    /// <summary>Bytes of the used (device) ring: flags, idx, the 8-byte entries and avail_event.</summary>
    /// <param name="size">The queue size.</param>
    /// <returns>6 + 8 × size.</returns>
    public static ulong UsedRingSize(uint size) => 6 + (8UL * size);
}
