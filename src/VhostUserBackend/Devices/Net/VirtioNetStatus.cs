namespace VhostUserBackend.Devices.Net;

/// <summary>The <c>status</c> field of <see cref="VirtioNetConfig"/> (<see cref="VirtioNetFeatures.Status"/>).</summary>
[Flags]
public enum VirtioNetStatus : ushort
{
    /// <summary>Link down, nothing to announce.</summary>
    None = 0,

    /// <summary><c>VIRTIO_NET_S_LINK_UP</c>: the link is up.</summary>
    LinkUp = 1,

    /// <summary><c>VIRTIO_NET_S_ANNOUNCE</c>: the driver is asked to announce itself (<see cref="VirtioNetFeatures.GuestAnnounce"/>).</summary>
    Announce = 2,
}
