using VhostUserBackend.Memory;

namespace VhostUserBackend;

public sealed partial class VhostUserWorker
{
    private ulong _guestMemoryFaultsSeen;

    /// <summary>Called (on the worker's thread) when the guest memory of this worker's rings was lost: the daemon drops the connection.</summary>
    internal Action<GuestMemoryRegion>? GuestMemoryLost { get; set; }

    /// <summary>
    /// After each device call: when the fault guard took over a fault since the last look and the
    /// memory of one of this worker's rings is the one lost, every such ring is failed and the
    /// daemon is told to drop the connection. One volatile read when no fault happened.
    /// </summary>
    private void CheckGuestMemoryLost()
    {
        ulong faults = GuestMemoryFaultGuard.FaultCount;
        if (faults == _guestMemoryFaultsSeen)
        {
            return;
        }

        _guestMemoryFaultsSeen = faults;
        GuestMemoryRegion? first = null;
        foreach (Vring v in _vrings)
        {
            if (GuestMemoryLoss.FindLostRegion(v.Memory) is { } lost)
            {
                first ??= lost;
                v.MarkBroken(GuestMemoryLoss.Reason(lost));
            }
        }

        if (first is not null)
        {
            GuestMemoryLost?.Invoke(first);
        }
    }
}
