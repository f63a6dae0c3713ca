namespace VhostUserBackend.Devices.Blk;

/// <summary>The <c>flags</c> of a <see cref="VirtioBlkDiscardWriteZeroes"/> segment.</summary>
[Flags]
public enum VirtioBlkDiscardFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary><c>VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP</c>: the zeroed range may be deallocated (WRITE_ZEROES only; reserved for DISCARD).</summary>
    Unmap = 1,
}
