namespace VhostProbe;

/// <summary>The virtio device types the probe decodes.</summary>
public enum DeviceKind
{
    /// <summary>Not known: only the common bits are named.</summary>
    Unknown,

    /// <summary>virtio-blk (device id 2).</summary>
    Blk,

    /// <summary>virtio-net (device id 1).</summary>
    Net,

    /// <summary>virtio-fs (device id 26).</summary>
    Fs,
}
