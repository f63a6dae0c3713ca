using Microsoft.Extensions.Logging;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Vdpa;

namespace VhostUserBackend;

/// <summary>The daemon's log messages (source-generated: nothing is allocated when a level is off).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "vhost-user daemon listening on {Path}")]
    public static partial void Listening(ILogger logger, string path);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "vhost-user front-end connected (connection {Connection})")]
    public static partial void Connected(ILogger logger, long connection);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "vhost-user front-end disconnected (connection {Connection}); rings, memory and fds released")]
    public static partial void Disconnected(ILogger logger, long connection);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "vhost-user connection {Connection} dropped after an error")]
    public static partial void ConnectionFailed(ILogger logger, long connection, Exception exception);

    [LoggerMessage(EventId = 104, Level = LogLevel.Error, Message = "accepting a vhost-user front-end failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 106, Level = LogLevel.Information, Message = "vhost-user daemon connecting to the front-end listening on {Path} (client mode; reconnects whenever it goes away)")]
    public static partial void Connecting(ILogger logger, string path);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "vhost-user front-end at {Path} not reachable ({Errno}); trying again in {DelayMilliseconds} ms, and on until the daemon stops")]
    public static partial void FrontendNotReachable(ILogger logger, string path, Vhost.Errno errno, double delayMilliseconds);

    [LoggerMessage(EventId = 108, Level = LogLevel.Debug, Message = "connected to the vhost-user front-end at {Path}")]
    public static partial void ConnectedToFrontend(ILogger logger, string path);

    [LoggerMessage(EventId = 109, Level = LogLevel.Information, Message = "vhost-user daemon serving front-ends that connect to the inherited listening socket {Socket}")]
    public static partial void ListeningOnInherited(ILogger logger, string socket);

    [LoggerMessage(EventId = 110, Level = LogLevel.Debug, Message = "features acked: 0x{Features:x} (event idx {EventIndex}, packed {Packed})")]
    public static partial void FeaturesAcked(ILogger logger, ulong features, bool eventIndex, bool packed);

    [LoggerMessage(EventId = 111, Level = LogLevel.Debug, Message = "protocol features acked: {Features}")]
    public static partial void ProtocolFeaturesAcked(ILogger logger, Vhost.User.Messages.VhostUserProtocolFeatures features);

    [LoggerMessage(EventId = 112, Level = LogLevel.Debug, Message = "guest memory now has {Regions} regions")]
    public static partial void MemoryUpdated(ILogger logger, int regions);

    [LoggerMessage(EventId = 113, Level = LogLevel.Debug, Message = "ring {Queue} started (size {Size}, base {Base}, {Resubmitted} inflight requests to resubmit)")]
    public static partial void RingStarted(ILogger logger, int queue, ushort size, uint @base, int resubmitted);

    [LoggerMessage(EventId = 114, Level = LogLevel.Debug, Message = "ring {Queue} stopped at base {Base}")]
    public static partial void RingStopped(ILogger logger, int queue, uint @base);

    [LoggerMessage(EventId = 115, Level = LogLevel.Warning, Message = "ring {Queue} lost its memory in the update: unmapped, it keeps its position and resumes once its areas are mapped again")]
    public static partial void RingLostMemory(ILogger logger, int queue, Exception exception);

    [LoggerMessage(EventId = 120, Level = LogLevel.Error, Message = "the device failed handling event {DeviceEvent} on worker {Thread}; the ring's error eventfd was signalled")]
    public static partial void HandleEventFailed(ILogger logger, int deviceEvent, int thread, Exception exception);

    [LoggerMessage(EventId = 121, Level = LogLevel.Error, Message = "{Thread} failed and stopped")]
    public static partial void WorkerThreadFailed(ILogger logger, string thread, Exception exception);

    [LoggerMessage(EventId = 122, Level = LogLevel.Information, Message = "worker {Thread} stopped by the device's exit event")]
    public static partial void WorkerExitEvent(ILogger logger, int thread);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "vhost-user front-end refused: peer pid {Pid} uid {Uid} gid {Gid} is not allowed")]
    public static partial void PeerRefused(ILogger logger, int pid, uint uid, uint gid);

    [LoggerMessage(EventId = 116, Level = LogLevel.Warning, Message = "guest memory region at 0x{GuestPhysicalAddress:x} is backed by a file that cannot be sealed against shrinking: a front-end that shrinks it loses its connection (SIGBUS, caught by the guest-memory fault guard; without the guard it kills the daemon); use MemoryFilePolicy=RequireShrinkSeal to refuse such files")]
    public static partial void MemoryFileUnsealed(ILogger logger, ulong guestPhysicalAddress);

    [LoggerMessage(EventId = 117, Level = LogLevel.Debug, Message = "guest memory region at 0x{GuestPhysicalAddress:x}: shrink seal {State}")]
    public static partial void MemoryFileSealState(ILogger logger, ulong guestPhysicalAddress, string state);

    [LoggerMessage(EventId = 118, Level = LogLevel.Debug, Message = "{Request} for region [0x{GuestPhysicalAddress:x}, +0x{Size:x}) repeats one already applied (QEMU 7.2 sends one per vhost device, so one per queue pair of a multiqueue net device): counted")]
    public static partial void MemoryRegionRepeat(ILogger logger, string request, ulong guestPhysicalAddress, ulong size);

    [LoggerMessage(EventId = 119, Level = LogLevel.Information, Message = "ring {Queue}: dirty logging of the ring's own writes {State} (VHOST_VRING_F_LOG, log address 0x{LogAddress:x})")]
    private static partial void RingLogging(ILogger logger, int queue, string state, ulong logAddress);

    public static void RingLogging(ILogger logger, int queue, bool on, ulong logAddress) => RingLogging(logger, queue, on ? "on" : "off", logAddress);

    [LoggerMessage(EventId = 123, Level = LogLevel.Information, Message = "dirty log mapped: {Size} bytes for guest addresses below 0x{Covers:x} (VHOST_F_LOG_ALL acked: {Active})")]
    public static partial void DirtyLogMapped(ILogger logger, ulong size, ulong covers, bool active);

    [LoggerMessage(EventId = 124, Level = LogLevel.Information, Message = "ring {Queue} is mapped again after a memory update and resumes at base {Base}")]
    public static partial void RingRegainedMemory(ILogger logger, int queue, uint @base);

    [LoggerMessage(EventId = 125, Level = LogLevel.Information, Message = "RESET_OWNER: every ring disabled (the front-end's session, memory and ring setup are kept, as the spec recommends)")]
    public static partial void ResetOwner(ILogger logger);

    [LoggerMessage(EventId = 126, Level = LogLevel.Information, Message = "ring {Queue} started by an in-band VRING_KICK")]
    public static partial void RingStartedInband(ILogger logger, int queue);

    [LoggerMessage(EventId = 127, Level = LogLevel.Warning, Message = "dirty logging is on but guest memory [0x{Start:x}, 0x{End:x}) lies beyond the dirty log (it covers 0x{Covers:x}): writes there are not logged")]
    public static partial void MemoryBeyondLog(ILogger logger, ulong start, ulong end, ulong covers);

    [LoggerMessage(EventId = 128, Level = LogLevel.Information, Message = "ring {Queue} stopped at base {Base} while dirty logging is on; {Marked} page marks in this log so far")]
    public static partial void RingStoppedLogging(ILogger logger, int queue, uint @base, long marked);

    [LoggerMessage(EventId = 129, Level = LogLevel.Warning, Message = "ring {Queue}: {Count} requests still in flight after {Seconds} s, before {Why}; they are abandoned (their inflight marks stay for the next back-end, their buffers stay mapped, their late completions are dropped, and the ring takes no new request until the device completed them)")]
    public static partial void InFlightLeft(ILogger logger, int queue, int count, string why, double seconds);

    [LoggerMessage(EventId = 130, Level = LogLevel.Error, Message = "ring {Queue} is broken ({Reason}: {Detail}); it is stopped, the front-end was signalled on its error fd, and it runs again once the front-end restarts or resets it")]
    public static partial void RingBroken(ILogger logger, int queue, Virtio.VirtqueueError reason, string detail);

    [LoggerMessage(EventId = 131, Level = LogLevel.Trace, Message = "ring {Queue} is broken: {Kicks} kicks ignored so far (logged at most every 10 s)")]
    public static partial void RingStillBroken(ILogger logger, int queue, long kicks);

    [LoggerMessage(EventId = 132, Level = LogLevel.Debug, Message = "ring {Queue}: the device put back {Count} held chains before {Why}")]
    public static partial void HeldChainsPutBack(ILogger logger, int queue, long count, string why);

    [LoggerMessage(EventId = 133, Level = LogLevel.Error, Message = "ring {Queue}: the device failed putting back its held chains before {Why}; the chains still in flight are waited for, then abandoned")]
    public static partial void UnpopHeldChainsFailed(ILogger logger, int queue, string why, Exception exception);

    [LoggerMessage(EventId = 134, Level = LogLevel.Warning, Message = "ring {Queue} started with {Count} abandoned requests still in the device; it takes new requests once they completed, for at most {Seconds} s (their I/O may still land, and a request resubmitted or a buffer reused before that could be overwritten by it)")]
    public static partial void StartedFenced(ILogger logger, int queue, int count, double seconds);

    [LoggerMessage(EventId = 136, Level = LogLevel.Error, Message = "ring {Queue}: the device still has {Count} abandoned requests; the ring takes new requests again anyway (if they complete later, their I/O may overwrite newer data)")]
    public static partial void FenceExpired(ILogger logger, int queue, int count);

    [LoggerMessage(EventId = 135, Level = LogLevel.Information, Message = "ring {Queue}: the device completed the last abandoned request; the ring takes new requests again")]
    public static partial void AbandonedCompleted(ILogger logger, int queue);

    [LoggerMessage(EventId = 140, Level = LogLevel.Information, Message = "driver status {Status} ({Source})")]
    public static partial void DriverStatus(ILogger logger, VirtioDeviceStatus status, string source);

    [LoggerMessage(EventId = 150, Level = LogLevel.Debug, Message = "config space changed before the driver runs: no notification (the driver reads it when it starts)")]
    internal static partial void ConfigChangeBeforeDriver(ILogger logger);

    [LoggerMessage(EventId = 151, Level = LogLevel.Warning, Message = "the device changed its config space, but the driver will not see the change until it reads the space again: {Why}")]
    internal static partial void ConfigChangeUnseen(ILogger logger, string why);

    [LoggerMessage(EventId = 152, Level = LogLevel.Debug, Message = "config change notification sent (CONFIG_CHANGE_MSG)")]
    internal static partial void ConfigChangeSent(ILogger logger);

    [LoggerMessage(EventId = 153, Level = LogLevel.Warning, Message = "config change notification (CONFIG_CHANGE_MSG) failed: {Reason}")]
    internal static partial void ConfigChangeFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 154, Level = LogLevel.Warning, Message = "the front-end sent {Request}, which needs protocol feature {Missing}: {Explanation}")]
    internal static partial void RequestNeedsProtocolFeature(ILogger logger, FrontendRequest request, VhostUserProtocolFeatures missing, string explanation);

    [LoggerMessage(EventId = 155, Level = LogLevel.Information, Message = "device state transfer started ({Direction})")]
    internal static partial void DeviceStateTransferStarted(ILogger logger, VhostUserTransferDirection direction);

    [LoggerMessage(EventId = 156, Level = LogLevel.Warning, Message = "device state transfer failed: {Reason}")]
    internal static partial void DeviceStateTransferFailed(ILogger logger, string reason);
}
