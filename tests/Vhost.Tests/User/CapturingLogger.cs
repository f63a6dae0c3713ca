using Microsoft.Extensions.Logging;

namespace Vhost.Tests.User;

/// <summary>An <see cref="ILogger"/> that records what is logged at or above <see cref="MinimumLevel"/>.</summary>
internal sealed class CapturingLogger(LogLevel minimumLevel) : ILogger
{
    private readonly List<(LogLevel Level, int EventId, string Message)> _entries = [];

    public LogLevel MinimumLevel { get; } = minimumLevel;

    public (LogLevel Level, int EventId, string Message)[] Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= MinimumLevel;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        lock (_entries)
        {
            _entries.Add((logLevel, eventId.Id, formatter(state, exception)));
        }
    }
}
