using VhostUserBackend.Memory;

namespace VhostUserBackend;

public sealed partial class Vring
{
    private ulong _guestMemoryFaultsSeen;

    /// <summary>
    /// After a pop (worker): whether the fault guard took over a fault since the last look and this
    /// ring's guest memory is the one lost; then the ring is marked broken and the chain just read
    /// (from zeros, or half from zeros) is not handed to the device. One volatile read when no
    /// fault happened.
    /// </summary>
    private bool IsGuestMemoryLost()
    {
        ulong faults = GuestMemoryFaultGuard.FaultCount;
        if (faults == _guestMemoryFaultsSeen)
        {
            return false;
        }

        _guestMemoryFaultsSeen = faults;
        if (GuestMemoryLoss.FindLostRegion(Queue.Memory) is not { } lost)
        {
            return false;
        }

        MarkBroken(GuestMemoryLoss.Reason(lost));
        return true;
    }
}
