using Microsoft.Extensions.Logging;

namespace VhostUserBackend.Hosting;

/// <summary>The hosted service's log messages (source-generated).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "the vhost-user device {Device} could not start")]
    public static partial void StartFailed(ILogger logger, string device, Exception exception);

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "the vhost-user daemon for {Device} ended without being stopped")]
    public static partial void EndedUnexpectedly(ILogger logger, string device);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "the vhost-user device {Device} stopped")]
    public static partial void Stopped(ILogger logger, string device);
}
