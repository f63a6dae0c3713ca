using Microsoft.Extensions.Logging;
using Vhost.User.Messages;

namespace VhostUserBackend;

/// <summary>The daemon's vIOMMU (VIRTIO_F_ACCESS_PLATFORM) log messages; event ids 190-199.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "VIRTIO_F_ACCESS_PLATFORM acked: ring and buffer addresses are IOVAs, translated through the device IOTLB")]
    public static partial void AccessPlatformAcked(ILogger logger);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "ring {Queue} started; its areas are not in the IOTLB yet, so it waits for the front-end's IOTLB update")]
    public static partial void RingWaitsForIotlb(ILogger logger, int queue);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "ring {Queue}: its areas translate now; started at base {Base}")]
    public static partial void RingStartedAfterIotlb(ILogger logger, int queue, uint @base);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "ring {Queue} cannot start after an IOTLB update")]
    public static partial void RingIotlbStartFailed(ILogger logger, int queue, Exception exception);

    [LoggerMessage(EventId = 204, Level = LogLevel.Trace, Message = "IOTLB {Type} [0x{Iova:x}, +0x{Size:x}) user 0x{UserAddress:x} {Permission}: {Entries} entries")]
    public static partial void IotlbMessage(ILogger logger, VhostIotlbType type, ulong iova, ulong size, ulong userAddress, VhostIotlbAccess permission, int entries);
}
