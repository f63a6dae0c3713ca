using System.Runtime.InteropServices;

namespace VhostUserBackend.Tests.Common.Interop;

/// <summary>The epoll_event layout epoll_wait uses on this architecture (the struct layouts are in the shared <see cref="InteropLayoutTests"/>).</summary>
public sealed class EpollEventSizeTests
{
    [Fact]
    public void Epoll_wait_uses_this_architectures_epoll_event()
    {
        // Packed to 12 bytes on x86_64 only; 16 elsewhere.
        int expected = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
        Assert.Equal(expected, global::Interop.EpollEventSize);
    }
}
