namespace Vhost.Vdpa;

/// <summary>The virtio device status bits (<c>VIRTIO_CONFIG_S_*</c>) read and written with <see cref="VhostVdpa.GetStatus"/> / <see cref="VhostVdpa.SetStatus"/>.</summary>
[Flags]
public enum VirtioDeviceStatus : byte
{
    /// <summary>Reset (0).</summary>
    Reset = 0,

    /// <summary><c>VIRTIO_CONFIG_S_ACKNOWLEDGE</c>: the driver found the device.</summary>
    Acknowledge = 0x01,

    /// <summary><c>VIRTIO_CONFIG_S_DRIVER</c>: the driver knows how to drive it.</summary>
    Driver = 0x02,

    /// <summary><c>VIRTIO_CONFIG_S_DRIVER_OK</c>: the driver is ready; the device runs.</summary>
    DriverOk = 0x04,

    /// <summary><c>VIRTIO_CONFIG_S_FEATURES_OK</c>: feature negotiation is complete.</summary>
    FeaturesOk = 0x08,

    /// <summary><c>VIRTIO_CONFIG_S_NEEDS_RESET</c>: the device hit an error it cannot recover from.</summary>
    NeedsReset = 0x40,

    /// <summary><c>VIRTIO_CONFIG_S_FAILED</c>: the driver gave up on the device.</summary>
    Failed = 0x80,
}
