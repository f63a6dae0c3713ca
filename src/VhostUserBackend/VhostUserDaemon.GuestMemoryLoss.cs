using VhostUserBackend.Memory;

namespace VhostUserBackend;

public sealed partial class VhostUserDaemon
{
    /// <summary>
    /// At start: installs the SIGBUS guard of guest-memory mappings (once per process; logs whether
    /// it is active) and has every worker drop the connection whose guest memory was lost.
    /// </summary>
    private void GuardGuestMemory()
    {
        if (GuestMemoryFaultGuard.UnavailableReason is { } reason)
        {
            Log.GuestMemoryGuardUnavailable(_logger, reason);
        }
        else
        {
            Log.GuestMemoryGuardActive(_logger);
        }

        foreach (VhostUserWorker w in _workers)
        {
            w.GuestMemoryLost = DropConnectionAfterMemoryLoss;
        }
    }

    /// <summary>A worker found the current front-end's guest memory lost (its rings are failed already): the connection goes.</summary>
    private void DropConnectionAfterMemoryLoss(GuestMemoryRegion region)
    {
        Log.GuestMemoryLost(_logger, region.GuestPhysicalAddress, region.LastGuestPhysicalAddress);
        lock (_lock)
        {
            _current?.Shutdown();
        }
    }
}
