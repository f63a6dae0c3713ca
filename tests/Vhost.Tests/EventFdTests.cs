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
}
