namespace VhostUserNet;

/// <summary>
/// One port's frame counters. The port's worker is the only writer of the TX fields; RX drops can
/// also be counted by other ports' workers (a full queue), hence <see cref="Interlocked"/> there.
/// Read from any thread (the values are statistics, not synchronisation).
/// </summary>
internal sealed class NetPortCounters
{
    /// <summary>Frames the driver transmitted.</summary>
    public long TxFrames;

    /// <summary>Bytes of those frames (without the virtio-net header).</summary>
    public long TxBytes;

    /// <summary>Transmitted chains that were malformed or too large (returned, frame dropped).</summary>
    public long TxErrors;

    /// <summary>Frames written into the driver's RX buffers.</summary>
    public long RxFrames;

    /// <summary>Bytes of those frames (without the virtio-net header).</summary>
    public long RxBytes;

    /// <summary>Frames for this port that were dropped: queue full, no ready RX ring, too large, or offloads the driver did not negotiate.</summary>
    public long RxDropped;

    /// <summary>SEND_RARP announcements of a migrated guest (switch mode: learned and broadcast to the other ports).</summary>
    public long Announcements;

    /// <summary>Formats the counters for the log.</summary>
    /// <returns>A line of counters.</returns>
    public override string ToString() => FormattableString.Invariant(
        $"tx {Volatile.Read(ref TxFrames)} frames/{Volatile.Read(ref TxBytes)} B ({Volatile.Read(ref TxErrors)} errors), rx {Volatile.Read(ref RxFrames)} frames/{Volatile.Read(ref RxBytes)} B ({Volatile.Read(ref RxDropped)} dropped), {Volatile.Read(ref Announcements)} migration announcements");
}
