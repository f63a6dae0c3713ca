using Microsoft.Win32.SafeHandles;

namespace VhostUserRng;

/// <summary>A one-shot monotonic timerfd (non-blocking, close-on-exec): readable once it expires.</summary>
internal sealed unsafe class RefillTimer : IDisposable
{
    public RefillTimer()
    {
        int fd = Interop.timerfd_create(Interop.CLOCK_MONOTONIC, Interop.TFD_CLOEXEC | Interop.TFD_NONBLOCK);
        if (fd < 0)
        {
            Interop.ThrowLast("timerfd_create");
        }

        Handle = Fd.Own(fd);
    }

    /// <summary>The timerfd.</summary>
    public SafeFileHandle Handle { get; }

    /// <summary>Arms the timer to expire once after <paramref name="delay"/> (at least 1 µs).</summary>
    public void Arm(TimeSpan delay)
    {
        long ns = Math.Max(1000, (long)(delay.TotalMilliseconds * 1_000_000));
        Interop.itimerspec spec = default;
        spec.it_value.tv_sec = ns / 1_000_000_000;
        spec.it_value.tv_nsec = ns % 1_000_000_000;
        using var scope = new Fd.HandleScope(Handle);

        // SAFETY: spec is a local; the kernel reads it during the call.
        Interop.Check(Interop.timerfd_settime(scope.Fd, 0, &spec, null), "timerfd_settime");
    }

    /// <summary>Consumes an expiry (no-op when none is pending).</summary>
    public void Drain()
    {
        Span<byte> count = stackalloc byte[8];
        Fd.TryRead(Handle, count, out _);
    }

    public void Dispose() => Handle.Dispose();
}
