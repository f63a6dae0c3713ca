using Microsoft.Extensions.Logging;

namespace VhostUserBackend;

/// <summary>The postcopy messages of the daemon's log (<see cref="Migration.PostcopySession"/>).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 190, Level = LogLevel.Information, Message = "postcopy: userfaultfd opened for the front-end (ioctls 0x{Ioctls:x})")]
    public static partial void PostcopyAdvised(ILogger logger, ulong ioctls);

    [LoggerMessage(EventId = 191, Level = LogLevel.Information, Message = "postcopy: listening; the memory table is answered with this process's mapping addresses")]
    public static partial void PostcopyListening(ILogger logger);

    [LoggerMessage(EventId = 192, Level = LogLevel.Information, Message = "postcopy: region 0x{GuestPhysicalAddress:x}+0x{Size:x} (mapped at 0x{Address:x}) registered for missing-page faults")]
    public static partial void PostcopyRegistered(ILogger logger, ulong guestPhysicalAddress, ulong size, ulong address);

    [LoggerMessage(EventId = 193, Level = LogLevel.Warning, Message = "postcopy: unregistering region 0x{GuestPhysicalAddress:x} failed: {Reason}")]
    public static partial void PostcopyUnregisterFailed(ILogger logger, ulong guestPhysicalAddress, string reason);

    [LoggerMessage(EventId = 194, Level = LogLevel.Information, Message = "postcopy: ended; {Count} region(s) unregistered, userfaultfd closed")]
    public static partial void PostcopyEnded(ILogger logger, int count);

    [LoggerMessage(EventId = 195, Level = LogLevel.Warning, Message = "postcopy: the front-end left while a worker may wait in one of its page faults; {Count} region(s) unregistered so the worker wakes (what it reads now is the file's page as it is)")]
    public static partial void PostcopyAbandoned(ILogger logger, int count);
}
