namespace Vhost.User.Messages;

/// <summary>
/// The request codes a back-end sends to its front-end on the back-end channel set up by
/// <see cref="FrontendRequest.SetBackendReqFd"/> (<c>VHOST_USER_BACKEND_*</c>).
/// </summary>
internal enum BackendRequest : uint
{
    /// <summary><c>VHOST_USER_BACKEND_IOTLB_MSG</c>: an IOTLB miss or access failure.</summary>
    IotlbMsg = 1,
    /// <summary><c>VHOST_USER_BACKEND_CONFIG_CHANGE_MSG</c>: the device config space changed.</summary>
    ConfigChangeMsg = 2,
    /// <summary><c>VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG</c>: a host notifier area for a ring (fd optional).</summary>
    VringHostNotifierMsg = 3,
    /// <summary><c>VHOST_USER_BACKEND_VRING_CALL</c>: an in-band call (used-buffer notification).</summary>
    VringCall = 4,
    /// <summary><c>VHOST_USER_BACKEND_VRING_ERR</c>: an in-band error notification.</summary>
    VringErr = 5,
    /// <summary><c>VHOST_USER_BACKEND_SHARED_OBJECT_ADD</c>: export a shared object UUID.</summary>
    SharedObjectAdd = 6,
    /// <summary><c>VHOST_USER_BACKEND_SHARED_OBJECT_REMOVE</c>: withdraw a shared object UUID.</summary>
    SharedObjectRemove = 7,
    /// <summary><c>VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP</c>: look up a UUID (reply u64 + dmabuf fd).</summary>
    SharedObjectLookup = 8,
    /// <summary><c>VHOST_USER_BACKEND_SHMEM_MAP</c>: map an fd into a VIRTIO shared memory region.</summary>
    ShmemMap = 9,
    /// <summary><c>VHOST_USER_BACKEND_SHMEM_UNMAP</c>: unmap part of a VIRTIO shared memory region.</summary>
    ShmemUnmap = 10,
}
