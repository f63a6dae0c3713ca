namespace Vhost.User.Messages;

/// <summary>Sizes and limits of the vhost-user protocol as this library enforces them.</summary>
public static class VhostUserLimits
{
    /// <summary>The size of the message header (request, flags, size: three u32).</summary>
    internal const int HeaderSize = 12;

    /// <summary>The size of the GET/SET_CONFIG header (offset, size, flags).</summary>
    internal const int ConfigHeaderSize = 12;

    /// <summary>The size of the SET_MEM_TABLE header (region count, padding).</summary>
    internal const int MemoryHeaderSize = 8;

    /// <summary>The size of one memory region in SET_MEM_TABLE.</summary>
    internal const int MemoryRegionSize = 32;

    /// <summary>The largest payload accepted (<c>MAX_MSG_SIZE</c> = 0x1000).</summary>
    internal const int MaxPayloadSize = 0x1000;

    /// <summary>The most regions in one SET_MEM_TABLE (<c>VHOST_MEMORY_BASELINE_NREGIONS</c>); more go through ADD_MEM_REG.</summary>
    internal const int MaxMemTableRegions = 8;

    /// <summary>The most fds one message may carry on the vhost-user and back-end channels.</summary>
    internal const int MaxAttachedFds = 8;

    /// <summary>The most memory slots a back-end may report (<c>VHOST_USER_MAX_RAM_SLOTS</c>).</summary>
    public const int MaxMemorySlots = 509;

    /// <summary>The largest device config space transferred by GET/SET_CONFIG (<c>VHOST_USER_MAX_CONFIG_SIZE</c>).</summary>
    public const int MaxConfigSize = 256;

    /// <summary>The highest config offset+size (<c>VHOST_USER_CONFIG_SIZE</c>).</summary>
    public const int MaxConfigSpaceEnd = 0x1000;

    /// <summary>The most queues a back-end may report through GET_QUEUE_NUM (<c>VHOST_USER_MAX_VRINGS</c>).</summary>
    public const int MaxQueues = 0x8000;

    /// <summary>The largest queue size (<c>SET_VRING_NUM</c>): 32768 entries, the virtio maximum.</summary>
    public const int MaxQueueSize = 0x8000;

    /// <summary>The number of VIRTIO shared memory regions in a GET_SHMEM_CONFIG reply.</summary>
    public const int MaxShmemRegions = 256;

    /// <summary>The largest inflight region a back-end may hand out (1 GiB).</summary>
    internal const ulong MaxInflightMmapSize = 1UL << 30;

    /// <summary>The ring-index mask of the SET_VRING_KICK/CALL/ERR u64 payload (bits 0-7).</summary>
    internal const ulong VringIndexMask = 0xFF;

    /// <summary>The "no fd" bit of the SET_VRING_KICK/CALL/ERR u64 payload (bit 8): poll instead, or unset.</summary>
    internal const ulong VringNoFdFlag = 0x100;

    /// <summary>The highest ring index the KICK/CALL/ERR payload can address.</summary>
    internal const int MaxVringFileIndex = 255;

    /// <summary>The SET_DEVICE_STATE_FD reply bit meaning "no fd attached, use the one you sent" (bit 8).</summary>
    internal const ulong DeviceStateNoFdFlag = 0x100;

    /// <summary>The SET_DEVICE_STATE_FD reply error mask (bits 0-7).</summary>
    internal const ulong DeviceStateErrorMask = 0xFF;

    /// <summary>The dirty-log page size (<c>VHOST_LOG_PAGE</c>).</summary>
    public const int LogPageSize = 0x1000;
}
