namespace VhostUserBlk;

/// <summary>The <c>flags</c> of a <c>virtio_blk_discard_write_zeroes</c> segment.</summary>
[Flags]
public enum VirtioBlkDiscardFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP: the zeroed range may be deallocated (write-zeroes only).</summary>
    Unmap = 1,
}
