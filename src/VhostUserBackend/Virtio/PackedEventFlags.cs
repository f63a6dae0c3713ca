namespace VhostUserBackend.Virtio;

/// <summary>The <c>flags</c> of a packed ring's event suppression structure (virtio 1.x section 2.8.10).</summary>
internal enum PackedEventFlags : ushort
{
    /// <summary>Notifications enabled (<c>RING_EVENT_FLAGS_ENABLE</c>).</summary>
    Enable = 0x0,

    /// <summary>Notifications disabled (<c>RING_EVENT_FLAGS_DISABLE</c>).</summary>
    Disable = 0x1,

    /// <summary>Notify at the descriptor position in <c>off_wrap</c> (<c>RING_EVENT_FLAGS_DESC</c>; needs EVENT_IDX).</summary>
    Descriptor = 0x2,
}
