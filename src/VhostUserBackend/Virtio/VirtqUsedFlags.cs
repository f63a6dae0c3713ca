namespace VhostUserBackend.Virtio;

/// <summary>Flags of the split ring's used ring, written by the device.</summary>
[Flags]
internal enum VirtqUsedFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>The device does not want kicks (<c>VIRTQ_USED_F_NO_NOTIFY</c>); ignored with EVENT_IDX.</summary>
    NoNotify = 0x1,
}
