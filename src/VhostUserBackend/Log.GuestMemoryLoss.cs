using Microsoft.Extensions.Logging;

namespace VhostUserBackend;

/// <summary>The SIGBUS guard of guest-memory mappings (see <see cref="Memory.GuestMemoryFaultGuard"/>).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 210, Level = LogLevel.Debug, Message = "guest-memory fault guard active: a front-end that shrinks an unsealable guest-RAM file costs its connection, not the daemon")]
    public static partial void GuestMemoryGuardActive(ILogger logger);

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "guest-memory fault guard unavailable ({Reason}): a front-end that shrinks a guest-RAM file the daemon could not seal kills the process with SIGBUS; use sealed memfds (MemoryFilePolicy=RequireShrinkSeal)")]
    public static partial void GuestMemoryGuardUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 212, Level = LogLevel.Error, Message = "guest memory [0x{First:x}, 0x{Last:x}] was shrunk under the daemon by the front-end (SIGBUS caught, the region now reads as zeros): its rings are failed and the connection is dropped")]
    public static partial void GuestMemoryLost(ILogger logger, ulong first, ulong last);
}
