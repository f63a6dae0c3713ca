namespace Vhost.User.Messages;

/// <summary>
/// The request codes a front-end sends to a back-end on the vhost-user socket
/// (<c>VHOST_USER_*</c> in QEMU's <c>docs/interop/vhost-user.rst</c>).
/// </summary>
internal enum FrontendRequest : uint
{
    /// <summary><c>VHOST_USER_GET_FEATURES</c>: read the back-end's virtio feature bits (reply u64).</summary>
    GetFeatures = 1,
    /// <summary><c>VHOST_USER_SET_FEATURES</c>: acknowledge virtio feature bits (u64).</summary>
    SetFeatures = 2,
    /// <summary><c>VHOST_USER_SET_OWNER</c>: claim the back-end session.</summary>
    SetOwner = 3,
    /// <summary><c>VHOST_USER_RESET_OWNER</c>: deprecated; release the session.</summary>
    ResetOwner = 4,
    /// <summary><c>VHOST_USER_SET_MEM_TABLE</c>: the guest memory regions, one fd each.</summary>
    SetMemTable = 5,
    /// <summary><c>VHOST_USER_SET_LOG_BASE</c>: the dirty-log shared memory (fd), reply required.</summary>
    SetLogBase = 6,
    /// <summary><c>VHOST_USER_SET_LOG_FD</c>: the eventfd signalled after log writes.</summary>
    SetLogFd = 7,
    /// <summary><c>VHOST_USER_SET_VRING_NUM</c>: the queue size.</summary>
    SetVringNum = 8,
    /// <summary><c>VHOST_USER_SET_VRING_ADDR</c>: descriptor, used and available ring addresses.</summary>
    SetVringAddr = 9,
    /// <summary><c>VHOST_USER_SET_VRING_BASE</c>: the next available index (and packed-ring state).</summary>
    SetVringBase = 10,
    /// <summary><c>VHOST_USER_GET_VRING_BASE</c>: stop the ring and read its base (reply vring state).</summary>
    GetVringBase = 11,
    /// <summary><c>VHOST_USER_SET_VRING_KICK</c>: the kick eventfd (or the no-fd flag).</summary>
    SetVringKick = 12,
    /// <summary><c>VHOST_USER_SET_VRING_CALL</c>: the call eventfd (or the no-fd flag).</summary>
    SetVringCall = 13,
    /// <summary><c>VHOST_USER_SET_VRING_ERR</c>: the error eventfd (or the no-fd flag).</summary>
    SetVringErr = 14,
    /// <summary><c>VHOST_USER_GET_PROTOCOL_FEATURES</c>: read protocol feature bits (reply u64).</summary>
    GetProtocolFeatures = 15,
    /// <summary><c>VHOST_USER_SET_PROTOCOL_FEATURES</c>: acknowledge protocol feature bits.</summary>
    SetProtocolFeatures = 16,
    /// <summary><c>VHOST_USER_GET_QUEUE_NUM</c>: the number of queues the back-end supports (reply u64).</summary>
    GetQueueNum = 17,
    /// <summary><c>VHOST_USER_SET_VRING_ENABLE</c>: enable or disable a ring.</summary>
    SetVringEnable = 18,
    /// <summary><c>VHOST_USER_SEND_RARP</c>: ask a net back-end to broadcast a RARP for a MAC.</summary>
    SendRarp = 19,
    /// <summary><c>VHOST_USER_NET_SET_MTU</c>: the MTU of a net back-end.</summary>
    NetSetMtu = 20,
    /// <summary><c>VHOST_USER_SET_BACKEND_REQ_FD</c> (ex <c>SET_SLAVE_REQ_FD</c>): the back-end channel socket.</summary>
    SetBackendReqFd = 21,
    /// <summary><c>VHOST_USER_IOTLB_MSG</c>: a device IOTLB update or invalidation (reply u64).</summary>
    IotlbMsg = 22,
    /// <summary><c>VHOST_USER_SET_VRING_ENDIAN</c>: ring endianness for legacy cross-endian guests.</summary>
    SetVringEndian = 23,
    /// <summary><c>VHOST_USER_GET_CONFIG</c>: read device config space (reply config; size 0 = error).</summary>
    GetConfig = 24,
    /// <summary><c>VHOST_USER_SET_CONFIG</c>: write device config space.</summary>
    SetConfig = 25,
    /// <summary><c>VHOST_USER_CREATE_CRYPTO_SESSION</c>: create a crypto session (reply session).</summary>
    CreateCryptoSession = 26,
    /// <summary><c>VHOST_USER_CLOSE_CRYPTO_SESSION</c>: close a crypto session (u64 id).</summary>
    CloseCryptoSession = 27,
    /// <summary><c>VHOST_USER_POSTCOPY_ADVISE</c>: open a userfaultfd (reply carries it).</summary>
    PostcopyAdvise = 28,
    /// <summary><c>VHOST_USER_POSTCOPY_LISTEN</c>: start handling postcopy faults.</summary>
    PostcopyListen = 29,
    /// <summary><c>VHOST_USER_POSTCOPY_END</c>: postcopy is over (reply u64).</summary>
    PostcopyEnd = 30,
    /// <summary><c>VHOST_USER_GET_INFLIGHT_FD</c>: allocate the inflight region (reply inflight + fd).</summary>
    GetInflightFd = 31,
    /// <summary><c>VHOST_USER_SET_INFLIGHT_FD</c>: hand the inflight region back after a reconnect.</summary>
    SetInflightFd = 32,
    /// <summary><c>VHOST_USER_GPU_SET_SOCKET</c>: the socket of the vhost-user GPU protocol.</summary>
    GpuSetSocket = 33,
    /// <summary><c>VHOST_USER_RESET_DEVICE</c>: reset the device to its initial state.</summary>
    ResetDevice = 34,
    /// <summary><c>VHOST_USER_VRING_KICK</c>: an in-band kick.</summary>
    VringKick = 35,
    /// <summary><c>VHOST_USER_GET_MAX_MEM_SLOTS</c>: how many regions the back-end accepts (reply u64).</summary>
    GetMaxMemSlots = 36,
    /// <summary><c>VHOST_USER_ADD_MEM_REG</c>: add one memory region (one fd).</summary>
    AddMemReg = 37,
    /// <summary><c>VHOST_USER_REM_MEM_REG</c>: remove one memory region.</summary>
    RemMemReg = 38,
    /// <summary><c>VHOST_USER_SET_STATUS</c>: the virtio device status byte.</summary>
    SetStatus = 39,
    /// <summary><c>VHOST_USER_GET_STATUS</c>: read the virtio device status byte (reply u64).</summary>
    GetStatus = 40,
    /// <summary><c>VHOST_USER_GET_SHARED_OBJECT</c>: the dmabuf fd of a shared object UUID.</summary>
    GetSharedObject = 41,
    /// <summary><c>VHOST_USER_SET_DEVICE_STATE_FD</c>: the pipe for device-state transfer (reply u64 + optional fd).</summary>
    SetDeviceStateFd = 42,
    /// <summary><c>VHOST_USER_CHECK_DEVICE_STATE</c>: whether the state transfer succeeded (reply u64).</summary>
    CheckDeviceState = 43,
    /// <summary><c>VHOST_USER_GET_SHMEM_CONFIG</c>: the VIRTIO shared memory regions (reply shmem config).</summary>
    GetShmemConfig = 44,
    /// <summary><c>VHOST_USER_GET_VRING_BASE_SKIP_DRAIN</c>: GET_VRING_BASE that suspends the ring's in-flight requests into the inflight region instead of completing them (reply vring state).</summary>
    GetVringBaseSkipDrain = 45,
}
