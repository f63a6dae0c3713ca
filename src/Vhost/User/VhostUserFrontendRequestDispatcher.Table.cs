using P = Vhost.User.Messages.VhostUserProtocolFeatures;
using V = Vhost.User.VhostUserVirtioGate;
using Vhost.User.Messages;
using Vhost.Virtio;
using static Vhost.User.VhostUserReplyKind;

namespace Vhost.User;

/// <content>The back-end request table: one row per request, read by the one dispatch path.</content>
internal sealed partial class VhostUserFrontendRequestDispatcher
{
    /// <summary>The rows, indexed by request code (the spec's BackendReq numbers); a code without a row is unknown.</summary>
    private static readonly VhostUserRequestRow<BackendRequestHandler>[] Requests = BuildTable();

    /// <summary>A handler method: checks the payload's values and calls the <see cref="IVhostUserFrontendRequestHandler"/>; returns the fd of a reply of its own, if any.</summary>
    private delegate Microsoft.Win32.SafeHandles.SafeFileHandle? BackendRequestHandler(VhostUserFrontendRequestDispatcher dispatcher, BackendRequest request, VhostUserMessage message);

    private static bool TryGetRow(uint code, out VhostUserRequestRow<BackendRequestHandler> row)
    {
        if (code < (uint)Requests.Length && Requests[code].IsKnown)
        {
            row = Requests[code];
            return true;
        }

        row = default;
        return false;
    }

    /// <summary>The protocol-feature gate of <paramref name="request"/>: the back-end channel checks it before sending, this dispatcher on receipt.</summary>
    internal static VhostUserProtocolFeatures GateOf(BackendRequest request)
        => TryGetRow((uint)request, out VhostUserRequestRow<BackendRequestHandler> row) ? row.Gate : VhostUserProtocolFeatures.None;

    private static VhostUserRequestRow<BackendRequestHandler>[] BuildTable()
    {
        var t = new VhostUserRequestRow<BackendRequestHandler>[(int)BackendRequest.ShmemUnmap + 1];
        const VhostUserFailureForm Errno = VhostUserFailureForm.NegativeErrno;

        // Columns: payload size, fewest fds, most fds, protocol-feature gate, virtio gate, reply kind, failure form, handler method.
        // Any fd also needs BACKEND_SEND_FD (checked with the gates).
        t[(int)BackendRequest.IotlbMsg] = new(32, 0, 0, P.None, V.AccessPlatform, AckWhenAsked, Errno, static (d, r, m) => d.IotlbMessage(m));
        t[(int)BackendRequest.ConfigChangeMsg] = new(0, 0, 0, P.Config, V.None, AckWhenAsked, Errno, static (d, r, m) => d.ConfigChange());
        t[(int)BackendRequest.VringHostNotifierMsg] = new(24, 0, 1, P.HostNotifier, V.None, AckWhenAsked, Errno, static (d, r, m) => d.VringHostNotifier(m));
        t[(int)BackendRequest.VringCall] = new(8, 0, 0, P.InbandNotifications, V.None, AckWhenAsked, Errno, static (d, r, m) => d.VringCallOrError(r, m));
        t[(int)BackendRequest.VringErr] = new(8, 0, 0, P.InbandNotifications, V.None, AckWhenAsked, Errno, static (d, r, m) => d.VringCallOrError(r, m));
        t[(int)BackendRequest.SharedObjectAdd] = new(16, 0, 0, P.SharedObject, V.None, AckWhenAsked, Errno, static (d, r, m) => d.SharedObjectAdd(r, m));
        t[(int)BackendRequest.SharedObjectRemove] = new(16, 0, 0, P.SharedObject, V.None, AckWhenAsked, Errno, static (d, r, m) => d.SharedObjectRemove(r, m));
        t[(int)BackendRequest.SharedObjectLookup] = new(16, 0, 0, P.SharedObject, V.None, Own, Errno, static (d, r, m) => d.SharedObjectLookup(r, m));
        t[(int)BackendRequest.ShmemMap] = new(40, 1, 1, P.Shmem | P.BackendSendFd, V.None, AckWhenAsked, Errno, static (d, r, m) => d.ShmemMap(m));
        t[(int)BackendRequest.ShmemUnmap] = new(40, 0, 0, P.Shmem, V.None, AckWhenAsked, Errno, static (d, r, m) => d.ShmemUnmap(m));
        return t;
    }

    private void CheckShapeAndGates(BackendRequest request, in VhostUserRequestRow<BackendRequestHandler> row, VhostUserMessage message)
    {
        if (message.Body.Length != row.Size)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{request}: payload is {message.Body.Length} bytes, expected {row.Size}");
        }

        if (message.Fds.Count < row.MinFds || message.Fds.Count > row.MaxFds)
        {
            throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"{request}: carries {message.Fds.Count} fds, expected {row.MinFds} to {row.MaxFds}");
        }

        VhostUserProtocolFeatures needed = row.Gate;
        if (message.Fds.Count > 0)
        {
            needed |= VhostUserProtocolFeatures.BackendSendFd;
        }

        if ((ProtocolFeatures & needed) != needed)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InactiveFeature, $"{request} needs protocol feature {needed}, which was not negotiated");
        }

        if (row.VirtioGate == VhostUserVirtioGate.AccessPlatform && (Features & (ulong)VirtioFeatures.AccessPlatform) == 0)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InactiveFeature, $"{request} needs VIRTIO_F_ACCESS_PLATFORM, which was not acked");
        }
    }
}
