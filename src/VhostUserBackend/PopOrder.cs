using System.Runtime.CompilerServices;

namespace VhostUserBackend;

/// <summary>
/// The order in which a ring's chains were popped, for <see cref="Vring.Unpop"/>: each pop stamps
/// its head with the next serial (and whether it was an inflight resubmission), putting a chain
/// back steps the serial back. A chain may be put back only when its stamp is the current serial:
/// it is the most recently popped chain that was not put back, and no chain was popped after it
/// and completed (that chain's serial would be the current one, and it is no longer in flight).
/// </summary>
/// <remarks>Worker, or the control thread while the worker is paused. Serials have 31 bits: a chain
/// held across 2^31 later pops could be mistaken for the latest one.</remarks>
internal sealed class PopOrder(ushort maxQueueSize)
{
    private const uint SerialMask = 0x7FFF_FFFF;

    // Per head: serial << 1 | 1 when the chain was a resubmission.
    private readonly uint[] _stamps = new uint[maxQueueSize];
    private uint _latest;

    /// <summary>A chain with <paramref name="head"/> was popped (the caller checked head &lt; the maximum size).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Record(ushort head, bool resubmitted) => _stamps[head] = (++_latest << 1) | (resubmitted ? 1u : 0u);

    /// <summary>Whether the in-flight chain <paramref name="head"/> is the most recently popped one still out.</summary>
    public bool IsLatest(ushort head, out bool resubmitted)
    {
        uint stamp = _stamps[head];
        resubmitted = (stamp & 1) != 0;
        return (stamp >> 1) == (_latest & SerialMask);
    }

    /// <summary>The latest chain was put back: the one popped before it is the latest again.</summary>
    public void StepBack() => _latest--;
}
