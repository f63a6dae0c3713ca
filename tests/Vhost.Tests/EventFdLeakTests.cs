namespace Vhost.Tests;

[Collection("FdCount")]
public sealed class EventFdLeakTests
{
    [Fact]
    public void Create_FromHandle_and_dispose_leave_the_fd_count_unchanged()
    {
        int before = OpenFds.Count();
        for (int i = 0; i < 100; i++)
        {
            using var e = new EventFd(EventFdFlags.NonBlocking);
            using EventFd adopted = EventFd.FromHandle(Fd.Duplicate(e), nonBlocking: true);
            adopted.Signal();
            Assert.Equal(1UL, e.Read());
        }

        Assert.Equal(before, OpenFds.Count());
    }
}
