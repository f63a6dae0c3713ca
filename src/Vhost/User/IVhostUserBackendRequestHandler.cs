using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// What a vhost-user back-end does with each front-end message (the rust-vmm
/// <c>VhostUserBackendReqHandler</c> trait). <see cref="VhostUserBackendRequestDispatcher"/> calls
/// one method per message after it has checked the payload size, the fd count, feature gating and
/// state, so a method sees only well-formed input; it replies and acknowledges for the handler.
/// </summary>
/// <remarks>
/// <para>Fail by throwing: a <see cref="VhostException"/> (or <see cref="VhostUserException"/>) is
/// reported to the front-end where the protocol can carry it (a failed REPLY_ACK, a size-0
/// GET_CONFIG reply, the SET_DEVICE_STATE_FD error bits). Methods not overridden throw
/// <see cref="NotSupportedException"/>.</para>
/// <para>Fds: methods that receive fds get the message's <see cref="ReceivedFds"/>; take the ones to
/// keep with <see cref="ReceivedFds.Take"/>; the dispatcher closes the rest when the method returns.
/// An fd a method returns is sent and then closed by the dispatcher.</para>
/// <para>Calls come from the dispatcher's thread, one at a time.</para>
/// </remarks>
internal interface IVhostUserBackendRequestHandler
{
    /// <summary>GET_FEATURES: the virtio feature bits the device offers (include <see cref="VhostUserVirtioFeatures.ProtocolFeatures"/> to negotiate protocol features).</summary>
    /// <returns>The feature bits.</returns>
    ulong GetFeatures();

    /// <summary>SET_FEATURES: the feature bits the driver acked.</summary>
    /// <param name="features">The acked bits.</param>
    void SetFeatures(ulong features);

    /// <summary>SET_OWNER: a front-end claims the session.</summary>
    void SetOwner();

    /// <summary>RESET_OWNER (deprecated): the front-end releases the session.</summary>
    void ResetOwner() => throw NotSupported(FrontendRequest.ResetOwner);

    /// <summary>GET_PROTOCOL_FEATURES: the protocol features the device supports. The dispatcher adds <see cref="VhostUserProtocolFeatures.ReplyAck"/>, which it implements.</summary>
    /// <returns>The protocol feature bits.</returns>
    VhostUserProtocolFeatures GetProtocolFeatures();

    /// <summary>SET_PROTOCOL_FEATURES: the protocol features the front-end acked.</summary>
    /// <param name="features">The acked bits.</param>
    void SetProtocolFeatures(VhostUserProtocolFeatures features);

    /// <summary>SET_MEM_TABLE: the guest memory regions (1 to 8), fd <c>i</c> backs region <c>i</c>.</summary>
    /// <param name="regions">The regions (each already syntax-checked).</param>
    /// <param name="fds">One fd per region.</param>
    void SetMemoryTable(ReadOnlySpan<VhostUserMemoryRegion> regions, ReceivedFds fds);

    /// <summary>SET_LOG_BASE (LOG_SHMFD): the dirty-log memory in fd 0.</summary>
    /// <param name="log">The log size and offset.</param>
    /// <param name="fds">One fd.</param>
    void SetLogBase(in VhostUserLog log, ReceivedFds fds) => throw NotSupported(FrontendRequest.SetLogBase);

    /// <summary>SET_LOG_FD: the eventfd to signal after log writes, in fd 0.</summary>
    /// <param name="fds">One fd.</param>
    void SetLogFd(ReceivedFds fds) => throw NotSupported(FrontendRequest.SetLogFd);

    /// <summary>SET_VRING_NUM: the size of ring <paramref name="index"/> (1 to 32768).</summary>
    /// <param name="index">The ring.</param>
    /// <param name="num">The size.</param>
    void SetVringNum(int index, uint num);

    /// <summary>SET_VRING_ADDR: the ring addresses.</summary>
    /// <param name="address">The addresses (alignment already checked).</param>
    void SetVringAddress(in VhostUserVringAddress address);

    /// <summary>SET_VRING_BASE: where to resume ring <paramref name="index"/>.</summary>
    /// <param name="index">The ring.</param>
    /// <param name="baseValue">The next available index (split) or packed-ring state word.</param>
    void SetVringBase(int index, uint baseValue);

    /// <summary>GET_VRING_BASE: stop ring <paramref name="index"/> and report where it stopped.</summary>
    /// <param name="index">The ring.</param>
    /// <returns>The base value.</returns>
    uint GetVringBase(int index);

    /// <summary>SET_VRING_KICK: the kick eventfd of ring <paramref name="index"/>; no fd means poll the ring.</summary>
    /// <param name="index">The ring (0-255).</param>
    /// <param name="fds">Zero or one fd, an eventfd (the dispatcher checked it).</param>
    void SetVringKick(int index, ReceivedFds fds);

    /// <summary>SET_VRING_CALL: the call eventfd of ring <paramref name="index"/>; no fd disables it.</summary>
    /// <param name="index">The ring (0-255).</param>
    /// <param name="fds">Zero or one fd, an eventfd (the dispatcher checked it).</param>
    void SetVringCall(int index, ReceivedFds fds);

    /// <summary>SET_VRING_ERR: the error eventfd of ring <paramref name="index"/>; no fd disables it.</summary>
    /// <param name="index">The ring (0-255).</param>
    /// <param name="fds">Zero or one fd, an eventfd (the dispatcher checked it).</param>
    void SetVringError(int index, ReceivedFds fds) => throw NotSupported(FrontendRequest.SetVringErr);

    /// <summary>GET_QUEUE_NUM (MQ): how many queues the device has (at most 32768).</summary>
    /// <returns>The queue count.</returns>
    ulong GetQueueNum() => throw NotSupported(FrontendRequest.GetQueueNum);

    /// <summary>SET_VRING_ENABLE: enable or disable ring <paramref name="index"/>.</summary>
    /// <param name="index">The ring.</param>
    /// <param name="enable">Whether to enable it.</param>
    void SetVringEnable(int index, bool enable) => throw NotSupported(FrontendRequest.SetVringEnable);

    /// <summary>SEND_RARP (RARP): broadcast a RARP for <paramref name="macAddress"/>.</summary>
    /// <param name="macAddress">The 6-byte MAC address.</param>
    void SendRarp(ReadOnlySpan<byte> macAddress) => throw NotSupported(FrontendRequest.SendRarp);

    /// <summary>NET_SET_MTU (NET_MTU): the MTU.</summary>
    /// <param name="mtu">The MTU.</param>
    void NetSetMtu(ulong mtu) => throw NotSupported(FrontendRequest.NetSetMtu);

    /// <summary>SET_BACKEND_REQ_FD (BACKEND_REQ): the back-end channel. The handler owns <paramref name="channel"/> from now on.</summary>
    /// <param name="channel">The sender for back-end requests.</param>
    void SetBackendRequestFd(VhostUserBackendChannel channel) => throw NotSupported(FrontendRequest.SetBackendReqFd);

    /// <summary>IOTLB_MSG (ACCESS_PLATFORM): a device IOTLB update or invalidation.</summary>
    /// <param name="message">The message.</param>
    void IotlbMessage(in VhostUserIotlbMessage message) => throw NotSupported(FrontendRequest.IotlbMsg);

    /// <summary>SET_VRING_ENDIAN (CROSS_ENDIAN): the endianness of ring <paramref name="index"/>.</summary>
    /// <param name="index">The ring.</param>
    /// <param name="endianness">Little or big.</param>
    void SetVringEndianness(int index, VringEndianness endianness) => throw NotSupported(FrontendRequest.SetVringEndian);

    /// <summary>GET_CONFIG (CONFIG): fill <paramref name="data"/> from config space at <paramref name="offset"/>.</summary>
    /// <param name="offset">The offset.</param>
    /// <param name="flags">The flags.</param>
    /// <param name="data">The bytes to fill (1 to 256).</param>
    void GetConfig(uint offset, VhostUserConfigFlags flags, Span<byte> data) => throw NotSupported(FrontendRequest.GetConfig);

    /// <summary>SET_CONFIG (CONFIG): write config space.</summary>
    /// <param name="offset">The offset.</param>
    /// <param name="flags">The flags.</param>
    /// <param name="data">The bytes (1 to 256).</param>
    void SetConfig(uint offset, VhostUserConfigFlags flags, ReadOnlySpan<byte> data) => throw NotSupported(FrontendRequest.SetConfig);

    /// <summary>CREATE_CRYPTO_SESSION (CRYPTO_SESSION): the payload is QEMU's session description, which the spec leaves opaque.</summary>
    /// <param name="session">The request payload.</param>
    /// <returns>The reply payload (the description with its session id).</returns>
    byte[] CreateCryptoSession(ReadOnlySpan<byte> session) => throw NotSupported(FrontendRequest.CreateCryptoSession);

    /// <summary>CLOSE_CRYPTO_SESSION (CRYPTO_SESSION).</summary>
    /// <param name="sessionId">The session id.</param>
    void CloseCryptoSession(ulong sessionId) => throw NotSupported(FrontendRequest.CloseCryptoSession);

    /// <summary>POSTCOPY_ADVISE (PAGEFAULT): open a userfaultfd and return it (the dispatcher sends and closes it).</summary>
    /// <returns>The userfaultfd.</returns>
    SafeFileHandle PostcopyAdvise() => throw NotSupported(FrontendRequest.PostcopyAdvise);

    /// <summary>POSTCOPY_LISTEN (PAGEFAULT): start serving faults.</summary>
    void PostcopyListen() => throw NotSupported(FrontendRequest.PostcopyListen);

    /// <summary>POSTCOPY_END (PAGEFAULT): postcopy is over.</summary>
    void PostcopyEnd() => throw NotSupported(FrontendRequest.PostcopyEnd);

    /// <summary>
    /// Postcopy (PAGEFAULT, after POSTCOPY_LISTEN): the address at which this back-end mapped
    /// <paramref name="region"/>, called by the dispatcher after a successful
    /// <see cref="SetMemoryTable"/> (once per region, in order) or <see cref="AddMemoryRegion"/>.
    /// </summary>
    /// <remarks>
    /// <para>Return <see langword="true"/> and the mapping's base address (where
    /// <see cref="VhostUserMemoryRegion.GuestPhysicalAddress"/> is mapped in this process) to have the
    /// dispatcher answer SET_MEM_TABLE / ADD_MEM_REG with the region list carrying these addresses,
    /// as the spec asks in postcopy mode; the front-end uses them to translate userfaultfd fault
    /// addresses. The regions must be mapped but not yet touched, and must not be registered with
    /// the userfaultfd until <see cref="PostcopyMemoryAcknowledged"/> is called.</para>
    /// <para>The default returns <see langword="false"/>: no region list is sent (a plain
    /// acknowledgement when NEED_REPLY is set), which a postcopy front-end such as QEMU does not
    /// accept. For SET_MEM_TABLE, answer every region or none.</para>
    /// </remarks>
    /// <param name="region">The region as the front-end described it.</param>
    /// <param name="mappingAddress">This process's address of the region's first byte.</param>
    /// <returns>Whether an address is provided.</returns>
    bool TryGetPostcopyMappingAddress(in VhostUserMemoryRegion region, out ulong mappingAddress)
    {
        mappingAddress = 0;
        return false;
    }

    /// <summary>
    /// Postcopy: the front-end acknowledged the region list sent after SET_MEM_TABLE or
    /// ADD_MEM_REG (its u64 0 message); only now may the back-end register the new mappings with
    /// the userfaultfd and let the guest's accesses fault. The default does nothing.
    /// </summary>
    void PostcopyMemoryAcknowledged()
    {
    }

    /// <summary>GET_INFLIGHT_FD (INFLIGHT_SHMFD): allocate the inflight region for <paramref name="request"/>'s queues.</summary>
    /// <param name="request">The queue count and size.</param>
    /// <param name="reply">The region's size and offset (and the queue count and size). An <see cref="VhostUserInflight.MmapSize"/> of 0 means "no inflight region": the reply then goes without an fd (a returned fd is closed).</param>
    /// <returns>The fd of the region (the dispatcher sends and closes it).</returns>
    SafeFileHandle GetInflightFd(in VhostUserInflight request, out VhostUserInflight reply) => throw NotSupported(FrontendRequest.GetInflightFd);

    /// <summary>SET_INFLIGHT_FD (INFLIGHT_SHMFD): the inflight region in fd 0.</summary>
    /// <param name="inflight">The region description.</param>
    /// <param name="fds">One fd.</param>
    void SetInflightFd(in VhostUserInflight inflight, ReceivedFds fds) => throw NotSupported(FrontendRequest.SetInflightFd);

    /// <summary>GPU_SET_SOCKET: the socket of the vhost-user GPU protocol in fd 0.</summary>
    /// <param name="fds">One fd.</param>
    void GpuSetSocket(ReceivedFds fds) => throw NotSupported(FrontendRequest.GpuSetSocket);

    /// <summary>RESET_DEVICE (RESET_DEVICE): return to the initial state.</summary>
    void ResetDevice() => throw NotSupported(FrontendRequest.ResetDevice);

    /// <summary>VRING_KICK (INBAND_NOTIFICATIONS): an in-band kick of ring <paramref name="index"/>.</summary>
    /// <param name="index">The ring.</param>
    void VringKick(int index) => throw NotSupported(FrontendRequest.VringKick);

    /// <summary>GET_MAX_MEM_SLOTS (CONFIGURE_MEM_SLOTS): how many regions the back-end accepts.</summary>
    /// <returns>The slot count (at most 509 is useful).</returns>
    ulong GetMaxMemorySlots() => throw NotSupported(FrontendRequest.GetMaxMemSlots);

    /// <summary>ADD_MEM_REG (CONFIGURE_MEM_SLOTS): one more region, backed by fd 0.</summary>
    /// <param name="region">The region.</param>
    /// <param name="fds">One fd.</param>
    void AddMemoryRegion(in VhostUserMemoryRegion region, ReceivedFds fds) => throw NotSupported(FrontendRequest.AddMemReg);

    /// <summary>REM_MEM_REG (CONFIGURE_MEM_SLOTS): remove the region matching <paramref name="region"/>.</summary>
    /// <param name="region">The region.</param>
    void RemoveMemoryRegion(in VhostUserMemoryRegion region) => throw NotSupported(FrontendRequest.RemMemReg);

    /// <summary>SET_STATUS (STATUS): the virtio device status.</summary>
    /// <param name="status">The status byte.</param>
    void SetStatus(byte status) => throw NotSupported(FrontendRequest.SetStatus);

    /// <summary>GET_STATUS (STATUS): the virtio device status.</summary>
    /// <returns>The status byte.</returns>
    byte GetStatus() => throw NotSupported(FrontendRequest.GetStatus);

    /// <summary>GET_SHARED_OBJECT (SHARED_OBJECT): the dmabuf of an object this back-end exported.</summary>
    /// <param name="uuid">The object.</param>
    /// <returns>The dmabuf fd (the dispatcher sends and closes it), or <see langword="null"/> when unknown.</returns>
    SafeFileHandle? GetSharedObject(Guid uuid) => throw NotSupported(FrontendRequest.GetSharedObject);

    /// <summary>SET_DEVICE_STATE_FD (DEVICE_STATE): start a state transfer through fd 0.</summary>
    /// <param name="direction">Save or load.</param>
    /// <param name="phase">The phase.</param>
    /// <param name="fds">One fd (the front-end's pipe end).</param>
    /// <returns>An fd the front-end should use instead, or <see langword="null"/> to use its own.</returns>
    SafeFileHandle? SetDeviceStateFd(VhostUserTransferDirection direction, VhostUserTransferPhase phase, ReceivedFds fds) => throw NotSupported(FrontendRequest.SetDeviceStateFd);

    /// <summary>CHECK_DEVICE_STATE (DEVICE_STATE): throw when the transfer failed.</summary>
    void CheckDeviceState() => throw NotSupported(FrontendRequest.CheckDeviceState);

    /// <summary>GET_SHMEM_CONFIG (SHMEM): the VIRTIO shared memory regions.</summary>
    /// <returns>The configuration.</returns>
    VhostUserShmemConfig GetShmemConfig() => throw NotSupported(FrontendRequest.GetShmemConfig);

    /// <summary>
    /// GET_VRING_BASE_SKIP_DRAIN (GET_VRING_BASE_SKIP_DRAIN): stop ring <paramref name="index"/>
    /// without waiting for its in-flight requests; they stay recorded in the inflight region (their
    /// host I/O cancelled or finished, never published) so the next back-end resubmits them.
    /// </summary>
    /// <param name="index">The ring.</param>
    /// <returns>The base value.</returns>
    uint GetVringBaseSkipDrain(int index) => throw NotSupported(FrontendRequest.GetVringBaseSkipDrain);

    /// <summary>
    /// The front-end sent <paramref name="request"/>, which needs protocol feature
    /// <paramref name="missing"/> that was not negotiated; the dispatcher refuses it after this call.
    /// A handler may log what the device author should do (offer the feature, implement the
    /// request). The default does nothing.
    /// </summary>
    /// <param name="request">The refused request.</param>
    /// <param name="missing">The protocol features it needs that were not negotiated.</param>
    internal void OnRequestNeedsProtocolFeature(FrontendRequest request, VhostUserProtocolFeatures missing)
    {
    }

    /// <summary>The exception the default methods throw.</summary>
    /// <param name="request">The request.</param>
    /// <returns>A <see cref="NotSupportedException"/>.</returns>
    internal static NotSupportedException NotSupported(FrontendRequest request)
        => new($"this back-end does not implement {request}");
}
