using Microsoft.Extensions.Logging;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>Collects formatted log lines (with the exception message) for assertions.</summary>
internal sealed class ListLoggerProvider
{
    private readonly List<string> _entries = [];

    public IReadOnlyList<string> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public void Add(string line)
    {
        lock (_entries)
        {
            _entries.Add(line);
        }
    }
}

internal sealed class ListLoggerFactory(ListLoggerProvider provider) : ILoggerFactory
{
    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new ListLogger(provider);

    public void Dispose()
    {
    }

    private sealed class ListLogger(ListLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => provider.Add($"{logLevel}: {formatter(state, exception)} {exception?.Message}");
    }
}
