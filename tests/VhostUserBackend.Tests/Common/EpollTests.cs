using Vhost;

namespace VhostUserBackend.Tests.Common;

public sealed class EpollTests
{
    private const uint In = global::Interop.EPOLLIN;
    private const uint Out = global::Interop.EPOLLOUT;

    [Fact]
    public void Add_wait_modify_remove()
    {
        using var epoll = new Epoll();
        using var e = new EventFd(EventFdFlags.NonBlocking);
        var events = new EpollEvent[8];
        Assert.True(Fd.IsCloseOnExec(epoll.Handle));

        epoll.Add(e, In, 42);
        Assert.Equal(0, epoll.Wait(events, 0));

        e.Signal();
        Assert.Equal(1, epoll.Wait(events, 1000));
        Assert.Equal(new EpollEvent(In, 42), events[0]);

        // Level-triggered: still readable, now under a new key.
        epoll.Modify(e, In, 7);
        Assert.Equal(1, epoll.Wait(events, 0));
        Assert.Equal(7UL, events[0].Data);

        // Watching for writability instead: an eventfd below its maximum is writable.
        epoll.Modify(e, Out, 8);
        Assert.Equal(1, epoll.Wait(events, 0));
        Assert.Equal(new EpollEvent(Out, 8), events[0]);

        epoll.Remove(e);
        Assert.Equal(0, epoll.Wait(events, 0));
        Assert.Equal(1UL, e.Read());
    }

    [Fact]
    public void The_64_bit_key_survives_the_packed_layout()
    {
        using var epoll = new Epoll();
        using var e = new EventFd(EventFdFlags.NonBlocking, initialValue: 1);
        epoll.Add(e, In, 0xFEDCBA9876543210);
        var events = new EpollEvent[1];
        Assert.Equal(1, epoll.Wait(events, 1000));
        Assert.Equal(0xFEDCBA9876543210UL, events[0].Data);
        Assert.Equal(In, events[0].Events);
    }

    [Fact]
    public void Several_ready_fds_each_report_their_key()
    {
        using var epoll = new Epoll();
        EventFd[] fds = [new(EventFdFlags.NonBlocking), new(EventFdFlags.NonBlocking), new(EventFdFlags.NonBlocking)];
        try
        {
            for (int i = 0; i < fds.Length; i++)
            {
                epoll.Add(fds[i], In, (ulong)(100 + i));
            }

            fds[0].Signal();
            fds[2].Signal();
            var events = new EpollEvent[8];
            int n = epoll.Wait(events, 1000);
            Assert.Equal([100UL, 102UL], events[..n].Select(ev => ev.Data).Order());

            // A buffer of one returns one event at a time.
            Assert.Equal(1, epoll.Wait(events.AsSpan(0, 1), 0));
        }
        finally
        {
            foreach (EventFd fd in fds)
            {
                fd.Dispose();
            }
        }
    }

    [Fact]
    public void Hang_up_is_reported()
    {
        using var epoll = new Epoll();
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        {
            epoll.Add(a, In | global::Interop.EPOLLRDHUP, 1);
            b.Dispose();
            var events = new EpollEvent[1];
            Assert.Equal(1, epoll.Wait(events, 1000));
            Assert.NotEqual(0u, events[0].Events & global::Interop.EPOLLRDHUP);
        }
    }

    [Fact]
    public void Control_errors_carry_errno_and_operation()
    {
        using var epoll = new Epoll();
        using var e = new EventFd();
        using var other = new EventFd();
        epoll.Add(e, In, 1);

        var twice = Assert.Throws<VhostException>(() => epoll.Add(e, In, 1));
        Assert.Equal((Errno.EEXIST, "epoll_ctl(ADD)"), (twice.Errno!.Value, twice.Operation));
        var modify = Assert.Throws<VhostException>(() => epoll.Modify(other, In, 1));
        Assert.Equal((Errno.ENOENT, "epoll_ctl(MOD)"), (modify.Errno!.Value, modify.Operation));
        var remove = Assert.Throws<VhostException>(() => epoll.Remove(other));
        Assert.Equal((Errno.ENOENT, "epoll_ctl(DEL)"), (remove.Errno!.Value, remove.Operation));

        // A regular file cannot be polled with epoll.
        using var memfd = Fd.CreateMemFd("regular", 0);
        Assert.Equal(Errno.EPERM, Assert.Throws<VhostException>(() => epoll.Add(memfd, In, 2)).Errno);
    }

    [Fact]
    public void An_empty_event_buffer_is_an_argument_error()
    {
        using var epoll = new Epoll();
        Assert.Equal("events", Assert.Throws<ArgumentException>(() => epoll.Wait([], 0)).ParamName);
    }

    [Fact]
    public void Wait_times_out_with_zero_events()
    {
        using var epoll = new Epoll();
        long start = Environment.TickCount64;
        Assert.Equal(0, epoll.Wait(new EpollEvent[1], 30));
        Assert.True(Environment.TickCount64 - start >= 20);
    }

    [Fact]
    public void Use_after_dispose_throws()
    {
        var epoll = new Epoll();
        epoll.Dispose();
        epoll.Dispose();
        Assert.Throws<ObjectDisposedException>(() => epoll.Wait(new EpollEvent[1], 0));
    }
}
