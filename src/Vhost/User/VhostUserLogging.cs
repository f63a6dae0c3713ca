using Microsoft.Extensions.Logging;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// Every log message of the vhost-user protocol code, in one place so the event ids stay unique.
/// Source-generated (<c>[LoggerMessage]</c>): a disabled level costs one <c>IsEnabled</c> check and
/// allocates nothing. Per-message events (requests sent or received, data-plane notifications) are
/// Debug; connection, negotiation and postcopy events are Information; failures are Warning or Error.
/// </summary>
/// <remarks>Event ids: 1-19 back-end request dispatcher, 20-39 front-end, 40-49 front-end request
/// dispatcher (back-end channel, front-end side), 50-59 back-end channel sender.</remarks>
internal static partial class VhostUserLogging
{
    // Back-end request dispatcher.
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "vhost-user request {Request} size={Size} fds={FdCount}")]
    internal static partial void RequestReceived(ILogger logger, uint request, uint size, int fdCount);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "vhost-user front-end disconnected")]
    internal static partial void FrontendDisconnected(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "vhost-user request failed (reported to the front-end): {Reason}")]
    internal static partial void ReportedFailure(ILogger logger, string reason);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "vhost-user request failed (the front-end asked for no acknowledgement; serving goes on): {Reason}")]
    internal static partial void UnreportedFailure(ILogger logger, string reason);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "vhost-user request code {Request} is unknown to this back-end (size {Size}, {FdCount} fds); {Answer}")]
    internal static partial void UnknownRequest(ILogger logger, uint request, uint size, int fdCount, string answer);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "vhost-user {Request}: tolerated {What}")]
    internal static partial void Tolerated(ILogger logger, FrontendRequest request, string what);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "could not report the failure of request {Request}: {Reason}")]
    internal static partial void ReplyFailed(ILogger logger, uint request, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "vhost-user connection failed ({Error}): {Reason}")]
    internal static partial void ConnectionFailed(ILogger logger, string error, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "vhost-user front-end acked features 0x{Features:x}")]
    internal static partial void FeaturesAcked(ILogger logger, ulong features);

    [LoggerMessage(EventId = 7, Level = LogLevel.Debug, Message = "vhost-user front-end acked protocol features {Features}")]
    internal static partial void ProtocolFeaturesAcked(ILogger logger, VhostUserProtocolFeatures features);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "postcopy: sent {Count} mapping addresses in reply to {Request}")]
    internal static partial void PostcopyRegionsSent(ILogger logger, FrontendRequest request, int count);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "postcopy: the front-end acknowledged the mapping addresses")]
    internal static partial void PostcopyAcknowledged(ILogger logger);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "the front-end disconnected right after {Request}, during feature negotiation: it likely needs something this back-end does not offer (offered virtio features: {Features}; protocol features: {ProtocolFeatures}; queues: {Queues}){Hint}")]
    internal static partial void NegotiationAbandoned(ILogger logger, FrontendRequest request, string features, string protocolFeatures, string queues, string hint);

    [LoggerMessage(EventId = 14, Level = LogLevel.Information, Message = "negotiated virtio features: {Features}; protocol features: {ProtocolFeatures}")]
    internal static partial void Negotiated(ILogger logger, string features, string protocolFeatures);

    // Front-end.
    [LoggerMessage(EventId = 20, Level = LogLevel.Debug, Message = "vhost-user send {Request} size={Size} fds={FdCount}")]
    internal static partial void RequestSent(ILogger logger, FrontendRequest request, int size, int fdCount);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "vhost-user back-end channel ended: {Reason}")]
    internal static partial void BackendChannelEnded(ILogger logger, string reason);

    [LoggerMessage(EventId = 22, Level = LogLevel.Information, Message = "vhost-user front-end connected to {Path}")]
    internal static partial void FrontendConnected(ILogger logger, string path);

    [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "vhost-user back-end offers features 0x{Features:x}")]
    internal static partial void BackendFeatures(ILogger logger, ulong features);

    [LoggerMessage(EventId = 24, Level = LogLevel.Information, Message = "vhost-user features acked 0x{Features:x}")]
    internal static partial void FrontendFeaturesAcked(ILogger logger, ulong features);

    [LoggerMessage(EventId = 25, Level = LogLevel.Information, Message = "vhost-user back-end offers protocol features {Features}")]
    internal static partial void BackendProtocolFeatures(ILogger logger, VhostUserProtocolFeatures features);

    [LoggerMessage(EventId = 26, Level = LogLevel.Information, Message = "vhost-user protocol features acked {Features}")]
    internal static partial void FrontendProtocolFeaturesAcked(ILogger logger, VhostUserProtocolFeatures features);

    [LoggerMessage(EventId = 27, Level = LogLevel.Error, Message = "vhost-user front-end failed on {Request} ({Error}): {Reason}; the connection is unusable")]
    internal static partial void FrontendFailed(ILogger logger, FrontendRequest request, string error, string reason);

    [LoggerMessage(EventId = 28, Level = LogLevel.Warning, Message = "vhost-user back-end failed {Request}: {Reason}")]
    internal static partial void BackendRejected(ILogger logger, FrontendRequest request, string reason);

    [LoggerMessage(EventId = 29, Level = LogLevel.Information, Message = "vhost-user back-end channel established")]
    internal static partial void BackendChannelStarted(ILogger logger);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "postcopy: the back-end mapped {Count} regions for {Request}")]
    internal static partial void PostcopyRegionsReceived(ILogger logger, FrontendRequest request, int count);

    // Front-end request dispatcher (the back-end channel on the front-end side).
    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "back-end request failed: {Reason}")]
    internal static partial void BackendRequestFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 41, Level = LogLevel.Debug, Message = "vhost-user back-end request {Request} size={Size} fds={FdCount}")]
    internal static partial void BackendRequestReceived(ILogger logger, uint request, uint size, int fdCount);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "vhost-user back-end channel closed by the back-end")]
    internal static partial void BackendChannelClosed(ILogger logger);

    // Back-end channel sender.
    [LoggerMessage(EventId = 50, Level = LogLevel.Debug, Message = "vhost-user back-end channel send {Request} size={Size}")]
    internal static partial void BackendRequestSent(ILogger logger, BackendRequest request, int size);

    [LoggerMessage(EventId = 51, Level = LogLevel.Error, Message = "vhost-user back-end channel failed on {Request} ({Error}): {Reason}")]
    internal static partial void BackendChannelFailed(ILogger logger, BackendRequest request, string error, string reason);

    [LoggerMessage(EventId = 52, Level = LogLevel.Warning, Message = "the front-end failed back-end request {Request}: {Reason}")]
    internal static partial void FrontendRejected(ILogger logger, BackendRequest request, string reason);
}
