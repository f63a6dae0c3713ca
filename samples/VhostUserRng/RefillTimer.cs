using System.Runtime.InteropServices;
using Vhost;

namespace VhostUserRng;

/// <summary>
/// A one-shot timer the worker's epoll can wait on: a non-blocking eventfd that a
/// <see cref="Timer"/> signals when it expires (public API only; no timerfd interop in the sample).
/// Millisecond resolution, which is plenty for refilling a token bucket.
/// </summary>
internal sealed class RefillTimer : IDisposable
{
    private static readonly TimeSpan MinimumDelay = TimeSpan.FromMilliseconds(1);
    private readonly EventFd _expired = new(EventFdFlags.NonBlocking);
    private readonly Timer _timer;

    public RefillTimer()
    {
        _timer = new Timer(static state => Expire((EventFd)state!), _expired, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The eventfd: readable once the timer expired.</summary>
    public SafeHandle Handle => _expired;

    /// <summary>Arms the timer to expire once after <paramref name="delay"/> (at least 1 ms).</summary>
    public void Arm(TimeSpan delay) => _timer.Change(delay < MinimumDelay ? MinimumDelay : delay, Timeout.InfiniteTimeSpan);

    /// <summary>Consumes an expiry (no-op when none is pending).</summary>
    public void Drain() => _expired.TryRead(out _);

    public void Dispose()
    {
        _timer.Dispose();
        _expired.Dispose();
    }

    private static void Expire(EventFd expired)
    {
        try
        {
            expired.TrySignal();
        }
        catch (ObjectDisposedException)
        {
            // The device was disposed while the callback was on its way.
        }
    }
}
