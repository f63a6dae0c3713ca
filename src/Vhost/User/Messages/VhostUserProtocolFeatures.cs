namespace Vhost.User.Messages;

/// <summary>The <c>VHOST_USER_PROTOCOL_F_*</c> bits exchanged by GET/SET_PROTOCOL_FEATURES.</summary>
[Flags]
public enum VhostUserProtocolFeatures : ulong
{
    /// <summary>No protocol feature.</summary>
    None = 0,
    /// <summary>Bit 0 <c>MQ</c>: multiple queues; GET_QUEUE_NUM.</summary>
    MQ = 1UL << 0,
    /// <summary>Bit 1 <c>LOG_SHMFD</c>: the dirty log is shared memory passed with SET_LOG_BASE.</summary>
    LogShmFd = 1UL << 1,
    /// <summary>Bit 2 <c>RARP</c>: SEND_RARP.</summary>
    Rarp = 1UL << 2,
    /// <summary>Bit 3 <c>REPLY_ACK</c>: the NEED_REPLY flag is honoured.</summary>
    ReplyAck = 1UL << 3,
    /// <summary>Bit 4 <c>NET_MTU</c>: NET_SET_MTU.</summary>
    NetMtu = 1UL << 4,
    /// <summary>Bit 5 <c>BACKEND_REQ</c> (ex <c>SLAVE_REQ</c>): the back-end channel.</summary>
    BackendRequest = 1UL << 5,
    /// <summary>Bit 6 <c>CROSS_ENDIAN</c>: SET_VRING_ENDIAN.</summary>
    CrossEndian = 1UL << 6,
    /// <summary>Bit 7 <c>CRYPTO_SESSION</c>: CREATE/CLOSE_CRYPTO_SESSION.</summary>
    CryptoSession = 1UL << 7,
    /// <summary>Bit 8 <c>PAGEFAULT</c>: postcopy migration with userfaultfd.</summary>
    PageFault = 1UL << 8,
    /// <summary>Bit 9 <c>CONFIG</c>: GET/SET_CONFIG and CONFIG_CHANGE_MSG.</summary>
    Config = 1UL << 9,
    /// <summary>Bit 10 <c>BACKEND_SEND_FD</c> (ex <c>SLAVE_SEND_FD</c>): the back-end may attach fds on its channel.</summary>
    BackendSendFd = 1UL << 10,
    /// <summary>Bit 11 <c>HOST_NOTIFIER</c>: VRING_HOST_NOTIFIER_MSG.</summary>
    HostNotifier = 1UL << 11,
    /// <summary>Bit 12 <c>INFLIGHT_SHMFD</c>: GET/SET_INFLIGHT_FD.</summary>
    InflightShmFd = 1UL << 12,
    /// <summary>Bit 13 <c>RESET_DEVICE</c>: RESET_DEVICE.</summary>
    ResetDevice = 1UL << 13,
    /// <summary>Bit 14 <c>INBAND_NOTIFICATIONS</c>: VRING_KICK and back-end VRING_CALL/VRING_ERR.</summary>
    InbandNotifications = 1UL << 14,
    /// <summary>Bit 15 <c>CONFIGURE_MEM_SLOTS</c>: GET_MAX_MEM_SLOTS, ADD/REM_MEM_REG.</summary>
    ConfigureMemorySlots = 1UL << 15,
    /// <summary>Bit 16 <c>STATUS</c>: SET/GET_STATUS.</summary>
    Status = 1UL << 16,
    /// <summary>Bit 17 <c>XEN_MMAP</c>: Xen mapping flags in memory regions.</summary>
    XenMmap = 1UL << 17,
    /// <summary>Bit 18 <c>SHARED_OBJECT</c>: GET_SHARED_OBJECT and SHARED_OBJECT_ADD/REMOVE/LOOKUP.</summary>
    SharedObject = 1UL << 18,
    /// <summary>Bit 19 <c>DEVICE_STATE</c>: SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE.</summary>
    DeviceState = 1UL << 19,
    /// <summary>Bit 20 <c>GET_VRING_BASE_INFLIGHT</c>: GET_VRING_BASE may suspend the ring's in-flight requests into the inflight region instead of completing them (only with <see cref="InflightShmFd"/>).</summary>
    GetVringBaseInflight = 1UL << 20,
    /// <summary>Bit 21 <c>GPA_ADDRESSES</c>: ring and region addresses are guest physical addresses.</summary>
    GpaAddresses = 1UL << 21,
    /// <summary>Bit 22 <c>SHMEM</c>: GET_SHMEM_CONFIG and SHMEM_MAP/UNMAP (rust-vmm before 0.17 put it at bit 21, wrongly).</summary>
    Shmem = 1UL << 22,
    /// <summary>Bit 23 <c>GET_VRING_BASE_SKIP_DRAIN</c>: the GET_VRING_BASE_SKIP_DRAIN message (with <see cref="GetVringBaseInflight"/> and <see cref="InflightShmFd"/>); GET_VRING_BASE then always drains.</summary>
    GetVringBaseSkipDrain = 1UL << 23,
    /// <summary>Every bit this library knows.</summary>
    AllKnown = (1UL << 24) - 1,
}
