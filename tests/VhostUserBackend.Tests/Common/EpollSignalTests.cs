using System.Runtime.InteropServices;

namespace VhostUserBackend.Tests.Common;

/// <summary>
/// <see cref="Epoll.Wait"/> under a real signal (see Vhost.Tests' SignalInterruptionTests for the
/// method: a SIGWINCH handler, then <c>tgkill</c> to the thread blocked in the call).
/// </summary>
[Collection("Signals")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class EpollSignalTests
{
    [Fact]
    public void Epoll_Wait_returns_zero_events_on_EINTR()
    {
        using var signals = new SignalCounter();
        using var epoll = new Epoll();
        var blocked = new BlockedCall<int>(() => epoll.Wait(new EpollEvent[4], -1));

        blocked.WaitUntilInSyscall(EpollWaitSyscalls, epoll.Handle);
        blocked.Signal();
        Assert.Equal(0, blocked.Result("epoll_wait was not interrupted"));
        signals.WaitForAtLeast(1);
    }

    // epoll_wait, or epoll_pwait where the C library routes it there.
    private static long[] EpollWaitSyscalls => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? [232, 281, 441] : [22, 441];
}
