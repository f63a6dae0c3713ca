using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <content>
/// The handler methods, one per back-end request (or per family sharing a payload): each checks
/// the values its row cannot and calls the <see cref="IVhostUserFrontendRequestHandler"/>.
/// </content>
internal sealed partial class VhostUserFrontendRequestDispatcher
{
    private SafeFileHandle? IotlbMessage(VhostUserMessage message)
    {
        VhostUserIotlbMessage iotlb = message.Read<VhostUserIotlbMessage>();
        if (!iotlb.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, "IotlbMsg: invalid IOTLB message");
        }

        _handler.IotlbMessage(iotlb);
        return null;
    }

    private SafeFileHandle? ConfigChange()
    {
        _handler.ConfigChange();
        return null;
    }

    private SafeFileHandle? VringHostNotifier(VhostUserMessage message)
    {
        VhostUserVringArea area = message.Read<VhostUserVringArea>();
        if (!area.IsValid() || area.HasNoFd != (message.Fds.Count == 0))
        {
            throw new VhostUserProtocolException(area.IsValid() ? VhostUserViolation.IncorrectFds : VhostUserViolation.InvalidMessage, "VringHostNotifierMsg: invalid area or fd presence does not match the no-fd flag");
        }

        _handler.VringHostNotifier(area, message.Fds);
        return null;
    }

    private SafeFileHandle? VringCallOrError(BackendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = message.Read<VhostUserVringState>();
        if (!state.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{request}: ring index {state.Index} out of range");
        }

        if (request == BackendRequest.VringCall)
        {
            _handler.VringCall((int)state.Index);
        }
        else
        {
            _handler.VringError((int)state.Index);
        }

        return null;
    }

    private SafeFileHandle? SharedObjectAdd(BackendRequest request, VhostUserMessage message)
    {
        _handler.SharedObjectAdd(ReadSharedObject(request, message));
        return null;
    }

    private SafeFileHandle? SharedObjectRemove(BackendRequest request, VhostUserMessage message)
    {
        _handler.SharedObjectRemove(ReadSharedObject(request, message));
        return null;
    }

    private SafeFileHandle SharedObjectLookup(BackendRequest request, VhostUserMessage message)
    {
        Guid uuid = ReadSharedObject(request, message);
        return _handler.SharedObjectLookup(uuid)
            ?? throw new VhostException(Errno.ENOENT, "SharedObjectLookup", $"no object {uuid}");
    }

    private SafeFileHandle? ShmemMap(VhostUserMessage message)
    {
        VhostUserShmemMap map = message.Read<VhostUserShmemMap>();
        if (!map.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, "ShmemMap: zero length, wrapping range or unknown flags");
        }

        _handler.ShmemMap(map, message.Fds);
        return null;
    }

    private SafeFileHandle? ShmemUnmap(VhostUserMessage message)
    {
        VhostUserShmemMap map = message.Read<VhostUserShmemMap>();
        if (map.Length == 0 || map.ShmemOffset > ulong.MaxValue - map.Length)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, "ShmemUnmap: zero length or wrapping range");
        }

        _handler.ShmemUnmap(map);
        return null;
    }

    private static Guid ReadSharedObject(BackendRequest request, VhostUserMessage message)
    {
        VhostUserSharedObject shared = message.Read<VhostUserSharedObject>();
        if (!shared.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{request}: nil or max UUID");
        }

        return shared.Uuid.ToGuid();
    }
}
