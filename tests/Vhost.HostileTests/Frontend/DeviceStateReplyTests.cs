using System.Runtime.InteropServices;
using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;
using VhostUserBackend;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// What the daemon answers to the hostile device-state transfers (the suite checks it survives
/// them; these check it says no, in time, and that a good transfer still works afterwards).
/// </summary>
public sealed class DeviceStateReplyTests
{
    [Fact]
    public void A_pipe_never_closed_fails_the_check_in_seconds_and_nothing_blocks()
    {
        using var target = new InProcessTarget();
        using HostileSession s = Session(target);
        (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
        using (w)
        {
            using (r)
            {
                Assert.Equal(0x100, DeviceStateScenarios.Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r));
            }

            Fd.Write(w, "ECHO"u8);
            var clock = Stopwatch.StartNew();
            Assert.NotEqual(0, DeviceStateScenarios.Check(s));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), clock.Elapsed.ToString());
        }

        // The control thread still answers, and a good transfer works.
        target.Device.Completed = 0;
        Assert.Equal(0, DeviceStateScenarios.Load(s, [.. EchoState.Magic, 42, 0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal(42, target.Device.Completed);
    }

    [Fact]
    public void A_transfer_the_front_end_abandons_times_out_on_its_own()
    {
        using var target = new InProcessTarget(new VhostUserDaemonOptions { DeviceStateTimeout = TimeSpan.FromMilliseconds(300) });
        using HostileSession s = Session(target);
        (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
        using (w)
        {
            using (r)
            {
                Assert.Equal(0x100, DeviceStateScenarios.Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r));
            }

            // The daemon's end is closed once the transfer timed out: writing then fails with EPIPE.
            var clock = Stopwatch.StartNew();
            Interop.Error errno = Interop.Error.None;
            while (clock.Elapsed < TimeSpan.FromSeconds(5) && errno != Interop.Error.EPIPE)
            {
                Thread.Sleep(50);
                Fd.TryWrite(w, "E"u8, out errno);
            }

            Assert.Equal(Interop.Error.EPIPE, errno);
            Assert.NotEqual(0, DeviceStateScenarios.Check(s));
        }
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { (byte)'E', (byte)'C', (byte)'H', (byte)'O' })]
    [InlineData(new byte[] { (byte)'X', (byte)'C', (byte)'H', (byte)'O', 1, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { (byte)'E', (byte)'C', (byte)'H', (byte)'O', 1, 0, 0, 0, 0, 0, 0, 0, 0 })]
    public void Garbage_truncated_and_overlong_states_are_rejected_and_change_nothing(byte[] state)
    {
        using var target = new InProcessTarget();
        using HostileSession s = Session(target);
        target.Device.Completed = 7;
        Assert.NotEqual(0, DeviceStateScenarios.Load(s, state));
        Assert.Equal(7, target.Device.Completed);
    }

    [Theory]
    [InlineData(0u, 1u, "pipe")]
    [InlineData(2u, 0u, "pipe")]
    [InlineData(1u, 0u, "file")]
    [InlineData(0u, 0u, "eventfd")]
    public void Wrong_phase_direction_or_fd_kind_is_refused_at_once(uint direction, uint phase, string kind)
    {
        using var target = new InProcessTarget();
        using HostileSession s = Session(target);
        (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
        using (r)
        using (w)
        using (SafeHandle fd = kind switch { "pipe" => Fd.Duplicate(r), "file" => Kit.RegularFile(0x1000), _ => Kit.EventFd() })
        {
            Assert.NotEqual(0, DeviceStateScenarios.Transfer(s, (VhostUserTransferDirection)direction, (VhostUserTransferPhase)phase, fd) & 0xFF);
        }

        Assert.NotEqual(0, DeviceStateScenarios.Check(s));
    }

    private static HostileSession Session(InProcessTarget target)
    {
        HostileSession s = HostileSession.Open(target.SocketPath);
        s.Negotiate();
        return s;
    }
}
