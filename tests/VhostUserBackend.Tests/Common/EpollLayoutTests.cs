using System.Runtime.InteropServices;

namespace VhostUserBackend.Tests.Common;

/// <summary>
/// The layouts of <c>struct epoll_event</c> (compiled into Vhost, used by the daemon; Vhost.Tests' layout
/// table lists both types as checked here): packed to 12 bytes on x86_64, 16 elsewhere.
/// </summary>
public sealed class EpollLayoutTests
{
    [Fact]
    public unsafe void Epoll_event_is_the_packed_12_byte_layout_on_x86_64()
    {
        Assert.Equal(12, sizeof(Interop.epoll_event));
        Assert.Equal(0, (int)Marshal.OffsetOf<Interop.epoll_event>(nameof(Interop.epoll_event.events)));
        Assert.Equal(4, (int)Marshal.OffsetOf<Interop.epoll_event>(nameof(Interop.epoll_event.data)));
        Assert.Equal(16, sizeof(Interop.EpollEventArm64));
        Assert.Equal(0, (int)Marshal.OffsetOf<Interop.EpollEventArm64>(nameof(Interop.EpollEventArm64.events)));
        Assert.Equal(8, (int)Marshal.OffsetOf<Interop.EpollEventArm64>(nameof(Interop.EpollEventArm64.data)));
        Assert.Equal(2, typeof(Interop.epoll_event).GetFields().Length);
        Assert.Equal(2, typeof(Interop.EpollEventArm64).GetFields().Length);
        int expected = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
        Assert.Equal(expected, Interop.EpollEventSize);
    }
}
