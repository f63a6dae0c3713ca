using System.Diagnostics;

namespace VhostUserRng;

/// <summary>
/// A token bucket: <see cref="BytesPerSecond"/> tokens a second, holding at most one second's
/// worth (or 64 bytes, whichever is larger). Used by one worker thread only.
/// </summary>
internal sealed class RateLimiter
{
    private readonly long _capacity;
    private double _tokens;
    private long _last;

    public RateLimiter(long bytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerSecond);
        BytesPerSecond = bytesPerSecond;
        _capacity = Math.Max(bytesPerSecond, 64);
        _tokens = _capacity;
        _last = Stopwatch.GetTimestamp();
    }

    /// <summary>The rate.</summary>
    public long BytesPerSecond { get; }

    /// <summary>Bytes that may be produced now (refills first).</summary>
    public long Available()
    {
        long now = Stopwatch.GetTimestamp();
        _tokens = Math.Min(_capacity, _tokens + (Stopwatch.GetElapsedTime(_last, now).TotalSeconds * BytesPerSecond));
        _last = now;
        return (long)_tokens;
    }

    /// <summary>Takes <paramref name="bytes"/> tokens (at most <see cref="Available"/>).</summary>
    public void Take(long bytes) => _tokens -= bytes;

    /// <summary>How long until <paramref name="bytes"/> tokens are available.</summary>
    public TimeSpan TimeUntil(long bytes)
    {
        double missing = Math.Min(bytes, _capacity) - _tokens;
        return missing <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(missing / BytesPerSecond);
    }
}
