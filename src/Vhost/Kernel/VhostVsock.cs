using Microsoft.Win32.SafeHandles;

namespace Vhost.Kernel;

/// <summary>
/// The in-kernel virtio-vsock device, <c>/dev/vhost-vsock</c>: queue 0 is RX (host to guest),
/// queue 1 is TX. Give the guest a context id with <see cref="SetGuestCid"/>, set up both rings,
/// then <see cref="Start"/>; host sockets connecting to that CID then appear in the RX ring.
/// </summary>
public sealed class VhostVsock : VhostKernelBackend
{
    /// <summary>The default device node.</summary>
    public const string DefaultPath = "/dev/vhost-vsock";

    /// <summary>The lowest CID a guest may have (0 hypervisor, 1 local, 2 host are reserved).</summary>
    public const ulong MinGuestCid = 3;

    /// <summary>Wraps an open <c>/dev/vhost-vsock</c> fd, taking ownership of it.</summary>
    /// <param name="device">The device fd.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public VhostVsock(SafeFileHandle device)
        : base(device, "vhost-vsock")
    {
    }

    /// <summary>Opens <paramref name="path"/>.</summary>
    /// <param name="path">The device node.</param>
    /// <returns>The device.</returns>
    /// <exception cref="VhostException">The open failed (<c>ENOENT</c>: the <c>vhost_vsock</c> module is not loaded).</exception>
    public static VhostVsock Open(string path = DefaultPath) => new(OpenDevice(path, "vhost_vsock"));

    /// <summary>Sets the guest's context id (<c>VHOST_VSOCK_SET_GUEST_CID</c>).</summary>
    /// <param name="cid">The CID: at least <see cref="MinGuestCid"/> and below <c>0xFFFFFFFF</c> (VMADDR_CID_ANY).</param>
    /// <exception cref="ArgumentOutOfRangeException">A reserved or out-of-range CID.</exception>
    /// <exception cref="VhostException">The kernel refused (<c>EADDRINUSE</c> when another device has this CID).</exception>
    public void SetGuestCid(ulong cid)
    {
        if (cid < MinGuestCid || cid >= uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(cid), cid, "a guest CID is from 3 to 0xFFFFFFFE");
        }

        unsafe
        {
            Ioctl(VhostIoctls.VHOST_VSOCK_SET_GUEST_CID, &cid, nameof(VhostIoctls.VHOST_VSOCK_SET_GUEST_CID));
        }
    }

    /// <summary>Starts the device (<c>VHOST_VSOCK_SET_RUNNING 1</c>); the rings must be set up.</summary>
    /// <exception cref="VhostException">The kernel refused (<c>EFAULT</c> when a ring is not accessible).</exception>
    public void Start() => IoctlInt(VhostIoctls.VHOST_VSOCK_SET_RUNNING, nameof(VhostIoctls.VHOST_VSOCK_SET_RUNNING), 1);

    /// <summary>Stops the device (<c>VHOST_VSOCK_SET_RUNNING 0</c>).</summary>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public void Stop() => IoctlInt(VhostIoctls.VHOST_VSOCK_SET_RUNNING, nameof(VhostIoctls.VHOST_VSOCK_SET_RUNNING), 0);
}
