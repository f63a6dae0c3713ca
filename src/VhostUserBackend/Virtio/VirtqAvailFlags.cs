namespace VhostUserBackend.Virtio;

/// <summary>Flags of the split ring's available ring, written by the driver.</summary>
[Flags]
internal enum VirtqAvailFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>The driver does not want interrupts (<c>VIRTQ_AVAIL_F_NO_INTERRUPT</c>); ignored with EVENT_IDX.</summary>
    NoInterrupt = 0x1,
}
