using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

/// <summary>One readiness event from <see cref="Epoll.Wait"/>, independent of the architecture's layout.</summary>
internal readonly record struct EpollEvent(uint Events, ulong Data);

/// <summary>
/// An epoll instance (close-on-exec) in a SafeHandle. The kernel's <c>epoll_event</c> is packed to
/// 12 bytes on x86_64 and 16 bytes elsewhere; this type converts so callers never see either.
/// </summary>
internal sealed unsafe class Epoll : IDisposable
{
    /// <summary>The most events one <see cref="Wait"/> returns.</summary>
    internal const int MaxEventsPerWait = 64;

    private readonly SafeFileHandle _handle;

    internal Epoll()
    {
        _handle = Fd.Own(ErrnoChecks.Check(Interop.epoll_create1(Interop.EPOLL_CLOEXEC), "epoll_create1"));
    }

    /// <summary>The epoll fd.</summary>
    internal SafeFileHandle Handle => _handle;

    /// <summary>Registers <paramref name="fd"/> for <paramref name="events"/> with <paramref name="data"/> as its key.</summary>
    internal void Add(SafeHandle fd, uint events, ulong data) => Control(Interop.EPOLL_CTL_ADD, fd, events, data, "epoll_ctl(ADD)");

    /// <summary>Changes the events or key of a registered fd.</summary>
    internal void Modify(SafeHandle fd, uint events, ulong data) => Control(Interop.EPOLL_CTL_MOD, fd, events, data, "epoll_ctl(MOD)");

    /// <summary>Unregisters <paramref name="fd"/>.</summary>
    internal void Remove(SafeHandle fd) => Control(Interop.EPOLL_CTL_DEL, fd, 0, 0, "epoll_ctl(DEL)");

    /// <summary>
    /// Waits for events, at most <paramref name="timeoutMilliseconds"/> (-1 = forever). EINTR
    /// returns 0 events so the caller re-checks its state. Allocates nothing.
    /// </summary>
    internal int Wait(Span<EpollEvent> events, int timeoutMilliseconds)
    {
        int max = Math.Min(events.Length, MaxEventsPerWait);
        if (max == 0)
        {
            throw new ArgumentException("the event buffer is empty", nameof(events));
        }

        using var scope = new Fd.HandleScope(_handle);
        if (Interop.IsX64)
        {
            Interop.epoll_event* buffer = stackalloc Interop.epoll_event[MaxEventsPerWait];
            int n = Interop.epoll_wait(scope.Fd, buffer, max, timeoutMilliseconds);
            if (n < 0)
            {
                return HandleWaitError();
            }

            for (int i = 0; i < n; i++)
            {
                events[i] = new EpollEvent(buffer[i].events, buffer[i].data);
            }

            return n;
        }
        else
        {
            Interop.EpollEventArm64* buffer = stackalloc Interop.EpollEventArm64[MaxEventsPerWait];
            int n = Interop.epoll_wait(scope.Fd, buffer, max, timeoutMilliseconds);
            if (n < 0)
            {
                return HandleWaitError();
            }

            for (int i = 0; i < n; i++)
            {
                events[i] = new EpollEvent(buffer[i].events, buffer[i].data);
            }

            return n;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();

    private static int HandleWaitError()
    {
        // EINTR: no events, the caller re-checks its state and waits again.
        return Interop.Interrupted(-1, out Interop.Error errno) ? 0 : throw ErrnoChecks.ExceptionFor(errno, "epoll_wait");
    }

    private void Control(int op, SafeHandle fd, uint events, ulong data, string name)
    {
        using var epoll = new Fd.HandleScope(_handle);
        using var target = new Fd.HandleScope(fd);
        int r;
        if (Interop.IsX64)
        {
            var ev = new Interop.epoll_event { events = events, data = data };
            r = Interop.epoll_ctl(epoll.Fd, op, target.Fd, &ev);
        }
        else
        {
            var ev = new Interop.EpollEventArm64 { events = events, data = data };
            r = Interop.epoll_ctl(epoll.Fd, op, target.Fd, &ev);
        }

        ErrnoChecks.Check(r, name);
    }
}
