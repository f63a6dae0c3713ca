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

    /// <summary>Waits for a line containing <paramref name="text"/> (the daemon logs a failure right after replying to it).</summary>
    public void WaitFor(string text)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (!Entries.Any(e => e.Contains(text, StringComparison.Ordinal)))
        {
            Assert.True(Environment.TickCount64 < deadline, $"nothing was logged containing \"{text}\"");
            Thread.Sleep(1);
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
