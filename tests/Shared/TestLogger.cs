using Microsoft.Extensions.Logging;

namespace Vhost.TestSupport;

/// <summary>One recorded log call.</summary>
internal readonly record struct LogEntry(string Category, LogLevel Level, int EventId, string Message, Exception? Exception)
{
    /// <summary>The entry as a line: <c>Level: message exception-message</c>.</summary>
    public override string ToString() => $"{Level}: {Message} {Exception?.Message}";
}

/// <summary>
/// The one test logger (linked into every test project that asserts on logs): records every call at
/// or above <see cref="MinimumLevel"/>. Usable directly as an <see cref="ILogger"/> (empty category),
/// as an <see cref="ILoggerProvider"/> for a host, or as the <see cref="ILoggerFactory"/> a daemon takes.
/// </summary>
internal sealed class TestLogger(LogLevel minimumLevel = LogLevel.Trace) : ILogger, ILoggerProvider, ILoggerFactory
{
    private readonly List<LogEntry> _entries = [];

    public LogLevel MinimumLevel { get; } = minimumLevel;

    /// <summary>A snapshot of what was logged, oldest first.</summary>
    public LogEntry[] Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>A snapshot of the entries as lines (<see cref="LogEntry.ToString"/>).</summary>
    public string[] Lines => Array.ConvertAll(Entries, e => e.ToString());

    /// <summary>Waits up to 5 s for a line containing <paramref name="text"/> (a daemon logs a failure right after replying to it).</summary>
    public void WaitFor(string text)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (!Lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
        {
            Assert.True(Environment.TickCount64 < deadline, $"nothing was logged containing \"{text}\"");
            Thread.Sleep(1);
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= MinimumLevel;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => Add(string.Empty, logLevel, eventId, formatter(state, exception), exception);

    public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private void Add(string category, LogLevel level, EventId eventId, string message, Exception? exception)
    {
        if (!IsEnabled(level))
        {
            return;
        }

        lock (_entries)
        {
            _entries.Add(new LogEntry(category, level, eventId.Id, message, exception));
        }
    }

    private sealed class CategoryLogger(TestLogger owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => owner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner.Add(category, logLevel, eventId, formatter(state, exception), exception);
    }
}
