using Vhost.User.Messages;

namespace VhostUserBackend;

/// <summary>
/// In-flight migration: GET_VRING_BASE_INFLIGHT (protocol bit 20) and GET_VRING_BASE_SKIP_DRAIN
/// (message 45, protocol bit 23). A device that can suspend its requests
/// (<see cref="IVhostUserBackend.SuspendInFlight"/>) offers bit 20 with INFLIGHT_SHMFD; the daemon
/// then offers bit 23 by itself. With bit 23 acked, GET_VRING_BASE drains and
/// GET_VRING_BASE_SKIP_DRAIN suspends; with bit 20 alone, GET_VRING_BASE suspends (the spec's "may").
/// A suspended ring's requests stay marked in the inflight region and their late completions are
/// dropped, so the next back-end (the migration destination, or this one when the migration fails
/// and the source resumes) resubmits each of them exactly once.
/// </summary>
internal sealed partial class VhostUserDaemonHandler
{
    private const VhostUserProtocolFeatures InflightMigration = VhostUserProtocolFeatures.GetVringBaseInflight | VhostUserProtocolFeatures.GetVringBaseSkipDrain;

    public uint GetVringBaseSkipDrain(int index) => StopForBase(index, suspendRequested: true, "GET_VRING_BASE_SKIP_DRAIN");

    /// <summary>Whether plain GET_VRING_BASE suspends: bit 20 acked without bit 23 (with bit 23 the front-end chooses per stop).</summary>
    private bool SuspendsOnGetVringBase
        => _negotiation.HasProtocolFeatures(VhostUserProtocolFeatures.GetVringBaseInflight)
           && !_negotiation.HasProtocolFeatures(VhostUserProtocolFeatures.GetVringBaseSkipDrain);

    /// <summary>The device's offer with bit 23 added when it offers bit 20 and INFLIGHT_SHMFD; bits 20 and 23 taken out when it offers bit 20 without the inflight region (the spec forbids that pair).</summary>
    private static VhostUserProtocolFeatures WithInflightMigration(VhostUserProtocolFeatures offered)
        => (offered & (VhostUserProtocolFeatures.GetVringBaseInflight | VhostUserProtocolFeatures.InflightShmFd)) == (VhostUserProtocolFeatures.GetVringBaseInflight | VhostUserProtocolFeatures.InflightShmFd)
            ? offered | VhostUserProtocolFeatures.GetVringBaseSkipDrain
            : offered & ~InflightMigration;

    /// <summary>Logs a front-end that acked bit 20 without INFLIGHT_SHMFD (every stop then drains: nothing could record the requests).</summary>
    private void CheckInflightMigrationAck(VhostUserProtocolFeatures acked)
    {
        if ((acked & VhostUserProtocolFeatures.GetVringBaseInflight) != 0 && (acked & VhostUserProtocolFeatures.InflightShmFd) == 0)
        {
            Log.InflightMigrationWithoutRegion(_logger);
        }
    }

    /// <summary>
    /// Suspends a stopping ring's in-flight requests instead of draining them (worker paused): the
    /// device cancels or finishes their host I/O and will not complete them; what it completed
    /// before is published. Refused (the caller drains) when the ring records nothing in an
    /// inflight region, the ring is broken, or the device cannot suspend.
    /// </summary>
    /// <returns>True when the ring may stop with its requests in flight.</returns>
    private bool TrySuspendInFlight(Vring v, string why)
    {
        if (v.InFlight == 0)
        {
            return false;
        }

        string? refusal = v.IsBroken ? "the ring is broken"
            : v.Inflight is null || !_negotiation.HasProtocolFeatures(VhostUserProtocolFeatures.InflightShmFd) ? "the ring has no inflight region to record them in"
            : null;
        if (refusal is not null)
        {
            Log.SuspendRefused(_logger, v.Index, why, v.InFlight, refusal);
            return false;
        }

        try
        {
            if (!_backend.SuspendInFlight(v))
            {
                Log.SuspendRefused(_logger, v.Index, why, v.InFlight, "the device cannot suspend them");
                return false;
            }
        }
        catch (Exception e)
        {
            Log.SuspendFailed(_logger, v.Index, why, e);
            return false;
        }

        // Requests the device finished before it suspended the rest are published, not resubmitted.
        v.DrainCompletions();
        Log.InFlightSuspended(_logger, v.Index, v.InFlight, why);
        return true;
    }
}
