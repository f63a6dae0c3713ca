using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests;

public sealed class EventFdTests
{
    [Fact]
    public void Signal_then_read_returns_the_sum_and_clears()
    {
        using var e = new EventFd(EventFdFlags.NonBlocking);
        e.Signal(2);
        e.Signal(3);
        Assert.Equal(5UL, e.Read());
        Assert.False(e.TryRead(out ulong v));
        Assert.Equal(0UL, v);
    }

    [Fact]
    public void Initial_value_is_readable_and_default_signal_adds_one()
    {
        using var e = new EventFd(EventFdFlags.NonBlocking, initialValue: 7);
        e.Signal();
        Assert.True(e.TryRead(out ulong v));
        Assert.Equal(8UL, v);
    }

    [Fact]
    public void Created_close_on_exec_with_the_requested_blocking_mode()
    {
        using var blocking = new EventFd();
        using var nonBlocking = new EventFd(EventFdFlags.NonBlocking);
        Assert.True(Fd.IsCloseOnExec(blocking));
        Assert.False(blocking.IsNonBlocking);
        Assert.False(Fd.IsNonBlocking(blocking));
        Assert.True(nonBlocking.IsNonBlocking);
        Assert.True(Fd.IsNonBlocking(nonBlocking));
        Assert.Equal(EventFdFlags.NonBlocking, nonBlocking.Flags);
    }

    [Fact]
    public void Semaphore_mode_reads_one_at_a_time()
    {
        using var e = new EventFd(EventFdFlags.Semaphore | EventFdFlags.NonBlocking);
        e.Signal(3);
        Assert.Equal(1UL, e.Read());
        Assert.Equal(1UL, e.Read());
        Assert.True(e.TryRead(out ulong v));
        Assert.Equal(1UL, v);
        Assert.False(e.TryRead(out _));
    }

    [Fact]
    public void Nonblocking_read_of_zero_counter_is_TryRead_false_and_Read_EAGAIN()
    {
        using var e = new EventFd(EventFdFlags.NonBlocking);
        Assert.False(e.TryRead(out ulong v));
        Assert.Equal(0UL, v);
        var ex = Assert.Throws<VhostException>(() => e.Read());
        Assert.Equal(Errno.EAGAIN, ex.Errno);
        Assert.Equal("read(eventfd)", ex.Operation);
    }

    [Fact]
    public async Task Blocking_read_is_woken_by_a_signal_from_another_thread()
    {
        using var e = new EventFd();
        var result = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = new Thread(() =>
        {
            try
            {
                result.SetResult(e.Read());
            }
            catch (Exception ex)
            {
                result.SetException(ex);
            }
        })
        { IsBackground = true };
        reader.Start();

        // The reader blocks: nothing completes while the counter is zero.
        await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.False(result.Task.IsCompleted);

        e.Signal(42);
        ulong value = await result.Task.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Equal(42UL, value);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(ulong.MaxValue)]
    public void Signal_of_0_or_max_is_an_argument_error(ulong value)
    {
        using var e = new EventFd(EventFdFlags.NonBlocking);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => e.Signal(value)).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => e.TrySignal(value)).ParamName);
        Assert.False(e.TryRead(out _)); // nothing was written
    }

    [Fact]
    public void Overflowing_a_nonblocking_counter_is_TrySignal_false_and_Signal_EAGAIN()
    {
        using var e = new EventFd(EventFdFlags.NonBlocking);
        e.Signal(ulong.MaxValue - 1); // the largest counter value
        Assert.False(e.TrySignal(1));
        Assert.Equal(Errno.EAGAIN, Assert.Throws<VhostException>(() => e.Signal(1)).Errno);
        Assert.Equal(ulong.MaxValue - 1, e.Read());
    }

    [Fact]
    public void FromHandle_takes_ownership_and_works()
    {
        int fd = global::Interop.eventfd(0, global::Interop.EFD_CLOEXEC);
        Assert.True(fd >= 0);
        SafeFileHandle raw = Fd.Own(fd);

        using EventFd e = EventFd.FromHandle(raw, nonBlocking: true);
        Assert.True(raw.IsClosed); // consumed
        Assert.True(e.IsNonBlocking);
        Assert.True(Fd.IsNonBlocking(e));
        Assert.True(Fd.IsCloseOnExec(e));
        Assert.False(e.TryRead(out _));
        e.Signal(9);
        Assert.Equal(9UL, e.Read());
    }

    [Fact]
    public void FromHandle_reports_the_fds_actual_blocking_mode()
    {
        int fd = global::Interop.eventfd(0, global::Interop.EFD_CLOEXEC | global::Interop.EFD_NONBLOCK);
        Assert.True(fd >= 0);

        // nonBlocking: false leaves the fd as it is; the wrapper must not claim it blocks.
        using EventFd e = EventFd.FromHandle(Fd.Own(fd), nonBlocking: false);
        Assert.True(e.IsNonBlocking);
        Assert.False(e.TryRead(out _));
    }

    [Fact]
    public void FromHandle_shares_the_counter_with_the_original_eventfd()
    {
        using var original = new EventFd(EventFdFlags.NonBlocking);
        using EventFd copy = EventFd.FromHandle(Fd.Duplicate(original));
        copy.Signal(4);
        Assert.Equal(4UL, original.Read());
    }

    [Fact]
    public void FromHandle_refuses_a_closed_or_null_handle()
    {
        SafeFileHandle closed = Fd.CreateMemFd("closed", 0);
        closed.Dispose();
        Assert.Equal("handle", Assert.Throws<ArgumentException>(() => EventFd.FromHandle(closed)).ParamName);
        Assert.Equal("handle", Assert.Throws<ArgumentException>(() => EventFd.FromHandle(new SafeFileHandle(-1, true))).ParamName);
        Assert.Throws<ArgumentNullException>(() => EventFd.FromHandle(null!));
    }

    [Fact]
    public void Dispose_is_idempotent_and_use_after_dispose_throws()
    {
        var e = new EventFd(EventFdFlags.NonBlocking);
        e.Dispose();
        e.Dispose();
        Assert.True(e.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => e.Signal());
        Assert.Throws<ObjectDisposedException>(() => e.TryRead(out _));
    }
}
