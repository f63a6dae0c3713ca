using Microsoft.Extensions.Logging;

namespace VhostUserBackend;

/// <summary>The daemon's log messages about in-flight migration and shared memory maps (event ids 170-179).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 170, Level = LogLevel.Information, Message = "ring {Index}: {Count} in-flight requests suspended into the inflight region at {Request} (the next back-end resubmits them)")]
    public static partial void InFlightSuspended(ILogger logger, int index, int count, string request);

    [LoggerMessage(EventId = 171, Level = LogLevel.Warning, Message = "ring {Index}: {Request} asked to suspend {Count} in-flight requests, but {Reason}; draining them instead")]
    public static partial void SuspendRefused(ILogger logger, int index, string request, int count, string reason);

    [LoggerMessage(EventId = 172, Level = LogLevel.Warning, Message = "ring {Index}: the device failed to suspend its in-flight requests at {Request}; draining them instead")]
    public static partial void SuspendFailed(ILogger logger, int index, string request, Exception exception);

    [LoggerMessage(EventId = 173, Level = LogLevel.Warning, Message = "the front-end acked GET_VRING_BASE_INFLIGHT without INFLIGHT_SHMFD, which the spec forbids: rings are drained at every stop")]
    public static partial void InflightMigrationWithoutRegion(ILogger logger);
}
