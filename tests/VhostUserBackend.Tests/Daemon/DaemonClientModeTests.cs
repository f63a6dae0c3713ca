using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Vhost.User;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// Client mode (<see cref="VhostUserDaemon.Connect"/>: the front-end listens, the daemon connects and
/// reconnects) and sockets handed to <see cref="VhostUserDaemon.Start(SafeFileHandle)"/> that listen
/// (socket activation).
/// </summary>
[Collection("FdCount")]
public sealed class DaemonClientModeTests
{
    private static readonly VhostUserDaemonOptions FastRetry = new() { ReconnectDelay = TimeSpan.FromMilliseconds(10), MaxReconnectDelay = TimeSpan.FromMilliseconds(50) };

    [Fact]
    public void Connect_retries_until_the_frontend_listens_and_connects_again_after_it_leaves()
    {
        int fds = TestHelpers.OpenFdCount();
        var device = new CopyDevice();
        string path = DaemonRig.NewSocketPath();
        using (var daemon = new VhostUserDaemon(device, FastRetry))
        {
            // Nobody listens yet: the daemon keeps trying (ENOENT) without blocking anyone.
            daemon.Connect(path);
            Thread.Sleep(200);
            Assert.False(daemon.IsConnected);
            Assert.Null(daemon.SocketPath);

            using var listener = new VhostUserListener(path);
            for (int i = 0; i < 3; i++)
            {
                using var rig = new DaemonRig(device, daemon, path);
                SafeFileHandle accepted = listener.TryAccept(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken) ?? throw new TimeoutException("the daemon did not connect");
                rig.Connect(eventIdx: true, packed: false, accepted: new VhostUserFrontend(accepted));
                rig.Start(eventIdx: true, packed: false);
                rig.Submit(0, DaemonRig.Payload(i));
                rig.Complete(0);
                rig.DisconnectFrontend();
                DaemonRig.WaitDisconnected(daemon, i + 1);
            }

            Assert.Equal(3, device.Completed);
            Assert.True(device.ResetCount >= 3, "the device was not reset between front-ends");
        }

        Assert.Equal(fds, TestHelpers.OpenFdCount());
    }

    [Fact]
    public void Stop_ends_a_reconnect_pause_at_once()
    {
        int fds = TestHelpers.OpenFdCount();
        string path = DaemonRig.NewSocketPath();
        var daemon = new VhostUserDaemon(new CopyDevice(), new VhostUserDaemonOptions { ReconnectDelay = TimeSpan.FromSeconds(30), MaxReconnectDelay = TimeSpan.FromSeconds(30) });
        daemon.Connect(path);
        Thread.Sleep(100);
        var w = Stopwatch.StartNew();
        daemon.Stop();
        Assert.True(w.Elapsed < TimeSpan.FromSeconds(2), $"Stop took {w.Elapsed} during a 30 s pause");
        Assert.True(daemon.WaitAsync(TestContext.Current.CancellationToken).IsCompleted);
        daemon.Dispose();
        Assert.Equal(0, daemon.ConnectionCount);
        Assert.Equal(fds, TestHelpers.OpenFdCount());
    }

    [Fact]
    public void Start_on_a_listening_socket_accepts_frontends_one_after_another()
    {
        int fds = TestHelpers.OpenFdCount();
        var device = new CopyDevice();
        string path = DaemonRig.NewSocketPath();
        try
        {
            using (var daemon = new VhostUserDaemon(device))
            {
                daemon.Start(UnixSocket.Listen(path));
                Assert.Null(daemon.SocketPath);
                for (int i = 0; i < 2; i++)
                {
                    using var rig = new DaemonRig(device, daemon, path);
                    rig.Connect(eventIdx: false, packed: i == 1);
                    rig.Start(eventIdx: false, packed: i == 1);
                    rig.Submit(0, DaemonRig.Payload(i));
                    rig.Complete(0);
                    rig.DisconnectFrontend();
                    DaemonRig.WaitDisconnected(daemon, i + 1);
                }

                Assert.Equal(2, device.Completed);
            }

            // The daemon closed the socket it was given: nobody listens there any more.
            Assert.Equal(Vhost.Errno.ECONNREFUSED, Assert.Throws<Vhost.VhostException>(() => UnixSocket.Connect(path).Dispose()).Errno);
        }
        finally
        {
            File.Delete(path);
        }

        Assert.Equal(fds, TestHelpers.OpenFdCount());
    }

    [Fact]
    public void Reconnect_delays_out_of_range_are_refused_with_their_name()
    {
        var e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(), new VhostUserDaemonOptions { ReconnectDelay = TimeSpan.Zero }));
        Assert.Contains(nameof(VhostUserDaemonOptions.ReconnectDelay), e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(), new VhostUserDaemonOptions { ReconnectDelay = TimeSpan.FromSeconds(2), MaxReconnectDelay = TimeSpan.FromSeconds(1) }));
        Assert.Contains(nameof(VhostUserDaemonOptions.MaxReconnectDelay), e.Message, StringComparison.Ordinal);
        using var daemon = new VhostUserDaemon(new CopyDevice());
        Assert.Throws<ArgumentException>(() => daemon.Connect(new string('x', 200)));
    }

    [Fact]
    public void Socket_activation_takes_fd_N_when_LISTEN_PID_is_this_process_and_refuses_otherwise()
    {
        string path = DaemonRig.NewSocketPath();
        using SafeFileHandle listening = UnixSocket.Listen(path);
        File.Delete(path);
        int fd = (int)listening.DangerousGetHandle();
        int me = Environment.ProcessId;

        var mismatch = Assert.Throws<InvalidOperationException>(() => SystemdSocketActivation.Take("1", "1", me, fd));
        Assert.Contains("LISTEN_PID=1 names another process", mismatch.Message, StringComparison.Ordinal);
        Assert.Contains("LISTEN_PID is not", Assert.Throws<InvalidOperationException>(() => SystemdSocketActivation.Take("1", null, me, fd)).Message, StringComparison.Ordinal);
        Assert.Contains("not a process id", Assert.Throws<InvalidOperationException>(() => SystemdSocketActivation.Take("1", "abc", me, fd)).Message, StringComparison.Ordinal);
        Assert.Contains("not a positive number", Assert.Throws<InvalidOperationException>(() => SystemdSocketActivation.Take("0", me.ToString(System.Globalization.CultureInfo.InvariantCulture), me, fd)).Message, StringComparison.Ordinal);

        // Ours: the handle is fd N itself (the test keeps owning it, so this one must not close it).
        SafeFileHandle taken = SystemdSocketActivation.Take("1", me.ToString(System.Globalization.CultureInfo.InvariantCulture), me, fd);
        Assert.Equal(fd, (int)taken.DangerousGetHandle());
        Assert.True(Fd.IsCloseOnExec(taken));
        taken.SetHandleAsInvalid();
        Assert.False(listening.IsClosed);
    }
}
