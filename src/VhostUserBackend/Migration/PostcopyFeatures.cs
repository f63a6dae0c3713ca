using Vhost.User.Messages;

namespace VhostUserBackend.Migration;

/// <summary>Which protocol features a daemon offers for postcopy.</summary>
internal static class PostcopyFeatures
{
    /// <summary>
    /// With postcopy (<see cref="VhostUserDaemonOptions.Postcopy"/>, or a device that lists PAGEFAULT
    /// itself): PAGEFAULT, and CONFIGURE_MEM_SLOTS withdrawn, since the spec does not allow the two
    /// together (QEMU up to 7.2 sends ADD_MEM_REG messages in postcopy that libvhost-user back-ends
    /// failed on). Without: the device's features unchanged.
    /// </summary>
    internal static VhostUserProtocolFeatures Apply(VhostUserProtocolFeatures device, bool postcopy)
        => postcopy || (device & VhostUserProtocolFeatures.PageFault) != 0
            ? (device | VhostUserProtocolFeatures.PageFault) & ~VhostUserProtocolFeatures.ConfigureMemorySlots
            : device;
}
