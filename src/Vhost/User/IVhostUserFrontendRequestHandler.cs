using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// What a front-end does with each back-end request arriving on the back-end channel (the
/// rust-vmm <c>VhostUserFrontendReqHandler</c> trait). Called by
/// <see cref="VhostUserFrontendRequestDispatcher"/> on its own thread, one call at a time, after
/// size, fd and feature checks. Throw to fail: the error is reported as a negative errno when the
/// back-end asked for a reply. Methods not overridden fail with ENOSYS
/// (<see cref="NotSupportedException"/>, answered with ENOSYS).
/// </summary>
public interface IVhostUserFrontendRequestHandler
{
    /// <summary>IOTLB_MSG: an IOTLB miss or access failure.</summary>
    /// <param name="message">The message.</param>
    void IotlbMessage(in VhostUserIotlbMessage message) => throw NotSupported(BackendRequest.IotlbMsg);

    /// <summary>CONFIG_CHANGE_MSG: the device config space changed.</summary>
    void ConfigChange() => throw NotSupported(BackendRequest.ConfigChangeMsg);

    /// <summary>VRING_HOST_NOTIFIER_MSG: map (fd 0) or remove (no fd) the host notifier of a ring.</summary>
    /// <param name="area">The ring, size and offset.</param>
    /// <param name="fds">Zero or one fd; take it to keep it.</param>
    void VringHostNotifier(in VhostUserVringArea area, ReceivedFds fds) => throw NotSupported(BackendRequest.VringHostNotifierMsg);

    /// <summary>VRING_CALL: an in-band used-buffer notification.</summary>
    /// <param name="queueIndex">The ring.</param>
    void VringCall(int queueIndex) => throw NotSupported(BackendRequest.VringCall);

    /// <summary>VRING_ERR: an in-band error notification.</summary>
    /// <param name="queueIndex">The ring.</param>
    void VringError(int queueIndex) => throw NotSupported(BackendRequest.VringErr);

    /// <summary>SHARED_OBJECT_ADD: the back-end exports an object.</summary>
    /// <param name="uuid">The object.</param>
    void SharedObjectAdd(Guid uuid) => throw NotSupported(BackendRequest.SharedObjectAdd);

    /// <summary>SHARED_OBJECT_REMOVE: the back-end withdraws an object.</summary>
    /// <param name="uuid">The object.</param>
    void SharedObjectRemove(Guid uuid) => throw NotSupported(BackendRequest.SharedObjectRemove);

    /// <summary>SHARED_OBJECT_LOOKUP: find the dmabuf of an object.</summary>
    /// <param name="uuid">The object.</param>
    /// <returns>The dmabuf fd (sent, then closed by the dispatcher), or <see langword="null"/> when unknown.</returns>
    SafeFileHandle? SharedObjectLookup(Guid uuid) => throw NotSupported(BackendRequest.SharedObjectLookup);

    /// <summary>SHMEM_MAP: map fd 0 into a VIRTIO shared memory region.</summary>
    /// <param name="map">What to map where.</param>
    /// <param name="fds">One fd; take it to keep it.</param>
    void ShmemMap(in VhostUserShmemMap map, ReceivedFds fds) => throw NotSupported(BackendRequest.ShmemMap);

    /// <summary>SHMEM_UNMAP: unmap part of a VIRTIO shared memory region.</summary>
    /// <param name="map">What to unmap.</param>
    void ShmemUnmap(in VhostUserShmemMap map) => throw NotSupported(BackendRequest.ShmemUnmap);

    /// <summary>The exception the default methods throw (errno ENOSYS).</summary>
    /// <param name="request">The request.</param>
    /// <returns>A <see cref="NotSupportedException"/> (the dispatcher answers it with ENOSYS).</returns>
    internal static NotSupportedException NotSupported(BackendRequest request)
        => new($"{request}: this front-end does not handle it (ENOSYS)");
}
