using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>In-flight migration (GET_VRING_BASE_INFLIGHT, GET_VRING_BASE_SKIP_DRAIN), as QEMU's vhost-user-blk <c>inflight-migration</c> does it.</summary>
public sealed partial class VhostUserFrontend
{
    /// <summary>
    /// GET_VRING_BASE_SKIP_DRAIN (needs <see cref="VhostUserProtocolFeatures.GetVringBaseSkipDrain"/>):
    /// stops a ring at once, without waiting for its in-flight requests. The back-end suspends them
    /// (cancels or finishes their host I/O, publishes nothing more) and leaves them marked in the
    /// inflight region (<see cref="GetInflightFd"/>), which the VMM hands to the next back-end
    /// (SET_INFLIGHT_FD) so it resubmits them. The VMM must migrate that region with the guest.
    /// </summary>
    /// <param name="queueIndex">The ring.</param>
    /// <returns>The ring's base, as <see cref="GetVringBase"/> returns it.</returns>
    /// <exception cref="InvalidOperationException">The protocol feature was not negotiated.</exception>
    /// <exception cref="VhostUserException">The back-end failed or the connection broke.</exception>
    public uint GetVringBaseSkipDrain(int queueIndex) => StopVring(FrontendRequest.GetVringBaseSkipDrain, queueIndex);

    /// <summary>The spec's rule: GET_VRING_BASE_INFLIGHT only with INFLIGHT_SHMFD, GET_VRING_BASE_SKIP_DRAIN only with both.</summary>
    private static void CheckInflightMigrationDependencies(VhostUserProtocolFeatures features)
    {
        if ((features & VhostUserProtocolFeatures.GetVringBaseInflight) != 0 && (features & VhostUserProtocolFeatures.InflightShmFd) == 0)
        {
            throw new ArgumentException("GET_VRING_BASE_INFLIGHT must only be negotiated with INFLIGHT_SHMFD", nameof(features));
        }

        if ((features & VhostUserProtocolFeatures.GetVringBaseSkipDrain) != 0 && (features & VhostUserProtocolFeatures.GetVringBaseInflight) == 0)
        {
            throw new ArgumentException("GET_VRING_BASE_SKIP_DRAIN must only be negotiated with GET_VRING_BASE_INFLIGHT and INFLIGHT_SHMFD", nameof(features));
        }
    }
}
