namespace VhostUserBackend.Virtio;

/// <summary>Descriptor flags of split and packed virtqueues (virtio 1.x sections 2.7.5 and 2.8.1).</summary>
[Flags]
internal enum VirtqDescriptorFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>The buffer continues in the next descriptor (<c>VIRTQ_DESC_F_NEXT</c>).</summary>
    Next = 0x1,

    /// <summary>The buffer is device write-only (<c>VIRTQ_DESC_F_WRITE</c>).</summary>
    Write = 0x2,

    /// <summary>The buffer holds a table of indirect descriptors (<c>VIRTQ_DESC_F_INDIRECT</c>).</summary>
    Indirect = 0x4,

    /// <summary>Packed ring: the avail flag (<c>VIRTQ_DESC_F_AVAIL</c>, bit 7).</summary>
    Available = 0x80,

    /// <summary>Packed ring: the used flag (<c>VIRTQ_DESC_F_USED</c>, bit 15).</summary>
    Used = 0x8000,
}
