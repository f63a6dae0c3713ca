using Microsoft.Extensions.Logging;

namespace Vhost.HostileTests.Memory;

/// <summary>Collects formatted log lines (with the exception message) for assertions.</summary>
internal sealed class ListLoggerFactory : ILoggerFactory
{
    private readonly List<string> _messages = [];

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new ListLogger(this);

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        lock (_messages)
        {
            _messages.Add(line);
        }
    }

    private sealed class ListLogger(ListLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner.Add($"{logLevel}: {formatter(state, exception)} {exception?.Message}");
    }
}
