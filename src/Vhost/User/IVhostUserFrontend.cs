using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// The vhost-user-only front-end calls on top of <see cref="IVhostBackend"/>. Each call checks
/// that its protocol feature was negotiated (otherwise <see cref="VhostUserError.InactiveFeature"/>,
/// nothing is sent) and fails with <see cref="VhostUserError.RequestFailed"/> when the back-end
/// reports failure.
/// </summary>
public interface IVhostUserFrontend : IVhostBackend
{
    /// <summary>GET_PROTOCOL_FEATURES (needs <see cref="VhostUserVirtioFeatures.ProtocolFeatures"/> in <see cref="IVhostBackend.GetFeatures"/>).</summary>
    /// <returns>The back-end's protocol features.</returns>
    VhostUserProtocolFeatures GetProtocolFeatures();

    /// <summary>SET_PROTOCOL_FEATURES: ack protocol features (a subset of <see cref="GetProtocolFeatures"/>).</summary>
    /// <param name="features">The acked features.</param>
    void SetProtocolFeatures(VhostUserProtocolFeatures features);

    /// <summary>GET_QUEUE_NUM (MQ).</summary>
    /// <returns>The number of queues (at most 32768).</returns>
    int GetQueueNum();

    /// <summary>SET_VRING_ENABLE (needs VHOST_USER_F_PROTOCOL_FEATURES acked).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="enable">Enable or disable.</param>
    void SetVringEnable(int queueIndex, bool enable);

    /// <summary>SEND_RARP (RARP).</summary>
    /// <param name="macAddress">The 6-byte MAC address.</param>
    void SendRarp(ReadOnlySpan<byte> macAddress);

    /// <summary>NET_SET_MTU (NET_MTU).</summary>
    /// <param name="mtu">The MTU.</param>
    void NetSetMtu(uint mtu);

    /// <summary>SET_BACKEND_REQ_FD (BACKEND_REQ): create the back-end channel and serve it with <paramref name="handler"/> on a dedicated thread.</summary>
    /// <param name="handler">What to do with back-end requests.</param>
    void SetBackendRequestFd(IVhostUserFrontendRequestHandler handler);

    /// <summary>IOTLB_MSG (needs VIRTIO_F_ACCESS_PLATFORM acked).</summary>
    /// <param name="message">The update or invalidation.</param>
    void SendIotlbMessage(in VhostUserIotlbMessage message);

    /// <summary>SET_VRING_ENDIAN (CROSS_ENDIAN).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="endianness">Little or big.</param>
    void SetVringEndianness(int queueIndex, VhostUserVringEndianness endianness);

    /// <summary>GET_CONFIG (CONFIG).</summary>
    /// <param name="offset">The config-space offset.</param>
    /// <param name="size">The number of bytes (1 to 256).</param>
    /// <param name="flags">The flags.</param>
    /// <returns>The config bytes.</returns>
    byte[] GetConfig(uint offset, uint size, VhostUserConfigFlags flags);

    /// <summary>SET_CONFIG (CONFIG).</summary>
    /// <param name="offset">The config-space offset.</param>
    /// <param name="flags">The flags.</param>
    /// <param name="data">The bytes (1 to 256).</param>
    void SetConfig(uint offset, VhostUserConfigFlags flags, ReadOnlySpan<byte> data);

    /// <summary>CREATE_CRYPTO_SESSION (CRYPTO_SESSION): the payload is QEMU's session description, opaque to the spec.</summary>
    /// <param name="session">The request payload.</param>
    /// <returns>The reply payload.</returns>
    byte[] CreateCryptoSession(ReadOnlySpan<byte> session);

    /// <summary>CLOSE_CRYPTO_SESSION (CRYPTO_SESSION).</summary>
    /// <param name="sessionId">The session id.</param>
    void CloseCryptoSession(ulong sessionId);

    /// <summary>POSTCOPY_ADVISE (PAGEFAULT).</summary>
    /// <returns>The back-end's userfaultfd; the caller owns it.</returns>
    SafeFileHandle PostcopyAdvise();

    /// <summary>POSTCOPY_LISTEN (PAGEFAULT).</summary>
    void PostcopyListen();

    /// <summary>POSTCOPY_END (PAGEFAULT).</summary>
    void PostcopyEnd();

    /// <summary>GET_INFLIGHT_FD (INFLIGHT_SHMFD).</summary>
    /// <param name="queueCount">The number of queues.</param>
    /// <param name="queueSize">The queue size.</param>
    /// <param name="inflight">The region description the back-end returned.</param>
    /// <returns>The region's fd; the caller owns it.</returns>
    SafeFileHandle GetInflightFd(ushort queueCount, ushort queueSize, out VhostUserInflight inflight);

    /// <summary>SET_INFLIGHT_FD (INFLIGHT_SHMFD).</summary>
    /// <param name="inflight">The region description.</param>
    /// <param name="fd">The region's fd; stays owned by the caller.</param>
    void SetInflightFd(in VhostUserInflight inflight, SafeHandle fd);

    /// <summary>GPU_SET_SOCKET.</summary>
    /// <param name="socket">The GPU protocol socket; stays owned by the caller.</param>
    void GpuSetSocket(SafeHandle socket);

    /// <summary>RESET_DEVICE (RESET_DEVICE).</summary>
    void ResetDevice();

    /// <summary>VRING_KICK (INBAND_NOTIFICATIONS).</summary>
    /// <param name="queueIndex">The queue.</param>
    void VringKick(int queueIndex);

    /// <summary>GET_MAX_MEM_SLOTS (CONFIGURE_MEM_SLOTS).</summary>
    /// <returns>The slot count, capped at <see cref="VhostUserLimits.MaxMemorySlots"/>.</returns>
    int GetMaxMemorySlots();

    /// <summary>ADD_MEM_REG (CONFIGURE_MEM_SLOTS).</summary>
    /// <param name="region">The region; its fd stays owned by the caller.</param>
    void AddMemoryRegion(in VhostMemoryRegionInfo region);

    /// <summary>REM_MEM_REG (CONFIGURE_MEM_SLOTS). No fd is sent.</summary>
    /// <param name="region">The region to remove.</param>
    void RemoveMemoryRegion(in VhostMemoryRegionInfo region);

    /// <summary>SET_STATUS (STATUS).</summary>
    /// <param name="status">The virtio status byte.</param>
    void SetStatus(byte status);

    /// <summary>GET_STATUS (STATUS).</summary>
    /// <returns>The virtio status byte.</returns>
    byte GetStatus();

    /// <summary>GET_SHARED_OBJECT (SHARED_OBJECT).</summary>
    /// <param name="uuid">The object.</param>
    /// <returns>The dmabuf fd; the caller owns it.</returns>
    SafeFileHandle GetSharedObject(Guid uuid);

    /// <summary>SET_DEVICE_STATE_FD (DEVICE_STATE).</summary>
    /// <param name="direction">Save or load.</param>
    /// <param name="phase">The phase.</param>
    /// <param name="fd">The pipe end for the transfer; stays owned by the caller.</param>
    /// <returns>The fd the back-end wants used instead (the caller owns it), or <see langword="null"/>.</returns>
    SafeFileHandle? SetDeviceStateFd(VhostUserTransferDirection direction, VhostUserTransferPhase phase, SafeHandle fd);

    /// <summary>CHECK_DEVICE_STATE (DEVICE_STATE): throws when the transfer failed.</summary>
    void CheckDeviceState();

    /// <summary>GET_SHMEM_CONFIG (SHMEM).</summary>
    /// <returns>The shared memory configuration.</returns>
    VhostUserShmemConfig GetShmemConfig();
}
