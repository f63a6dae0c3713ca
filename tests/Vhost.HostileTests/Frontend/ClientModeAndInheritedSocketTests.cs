using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Vhost.HostileTests.Targets;
using Vhost.User;
using VhostUserBackend;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// Hostile peers of the daemon's client mode (a front-end that accepts and hangs up, one that never
/// accepts, one that sends garbage) and bad sockets handed to it (<c>--fd</c>, socket activation):
/// the daemon keeps going or refuses clearly, Stop stays prompt, and no fd is left behind.
/// </summary>
[Collection("FdCount")]
public sealed class ClientModeAndInheritedSocketTests
{
    private static readonly VhostUserDaemonOptions FastRetry = new() { ReconnectDelay = TimeSpan.FromMilliseconds(10), MaxReconnectDelay = TimeSpan.FromMilliseconds(200) };

    private static string NewPath() => Path.Combine(Path.GetTempPath(), $"client-{Guid.NewGuid():N}.sock");

    [Fact]
    public void A_frontend_that_accepts_and_hangs_up_at_once_gets_a_growing_backoff_and_then_a_working_daemon()
    {
        int before = OpenFds.Count();
        string path = NewPath();
        using (var listener = new VhostUserListener(path))
        using (var daemon = new VhostUserDaemon(new EchoDevice(), FastRetry))
        {
            daemon.Connect(path);
            var w = Stopwatch.StartNew();
            int hangups = 0;
            while (w.Elapsed < TimeSpan.FromSeconds(1))
            {
                SafeFileHandle? s = listener.TryAccept(TimeSpan.FromMilliseconds(50), TestContext.Current.CancellationToken);
                if (s is not null)
                {
                    s.Dispose();
                    hangups++;
                }
            }

            // 10, 20, 40, 80, 160, then 200 ms pauses: about ten connections in a second, not thousands.
            Assert.InRange(hangups, 3, 15);

            // A real front-end afterwards is served.
            using HostileSession s2 = HostileSession.Accept(listener);
            Assert.NotEqual(0UL, s2.Negotiate());
        }

        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public void A_frontend_that_never_accepts_full_backlog_blocks_nothing_and_Stop_is_prompt()
    {
        int before = OpenFds.Count();
        string path = NewPath();
        var queued = new List<SafeFileHandle>();
        using (var listener = new VhostUserListener(path, backlog: 0))
        {
            // Fill the backlog: further connects answer EAGAIN (a blocking connect would wait forever).
            while (UnixSocket.TryConnectNow(path, out Interop.Error error) is SafeFileHandle s)
            {
                queued.Add(s);
                Assert.True(queued.Count < 100, "the backlog never filled");
            }

            var daemon = new VhostUserDaemon(new EchoDevice(), FastRetry);
            daemon.Connect(path);
            Thread.Sleep(300);
            Assert.False(daemon.IsConnected);
            var w = Stopwatch.StartNew();
            daemon.Stop();
            Assert.True(w.Elapsed < TimeSpan.FromSeconds(1), $"Stop took {w.Elapsed}");
            Assert.Equal(0, daemon.ConnectionCount);
            daemon.Dispose();
            foreach (SafeFileHandle s in queued)
            {
                s.Dispose();
            }
        }

        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public void A_frontend_that_sends_garbage_loses_the_connection_and_the_daemon_connects_again()
    {
        int before = OpenFds.Count();
        string path = NewPath();
        using (var listener = new VhostUserListener(path))
        using (var daemon = new VhostUserDaemon(new EchoDevice(), FastRetry))
        {
            daemon.Connect(path);
            for (int i = 0; i < 3; i++)
            {
                using HostileSession junk = HostileSession.Accept(listener);
                byte[] garbage = new byte[64];
                new Random(i).NextBytes(garbage);
                junk.Raw(HostileSession.Header(0xdead, 0x7, 1 << 20));
                junk.Raw(garbage);
            }

            using HostileSession good = HostileSession.Accept(listener);
            Assert.NotEqual(0UL, good.Negotiate());
            Assert.Equal(4, daemon.ConnectionCount);
        }

        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public void An_fd_that_is_not_a_socket_is_refused_by_name_and_stays_the_callers()
    {
        int before = OpenFds.Count();
        using (SafeFileHandle memfd = Fd.CreateMemFd("not-a-socket", 4096))
        using (var daemon = new VhostUserDaemon(new EchoDevice()))
        {
            var e = Assert.Throws<ArgumentException>(() => daemon.Start(memfd));
            Assert.Contains("is not a socket", e.Message, StringComparison.Ordinal);
            Assert.False(memfd.IsClosed);

            // Refused before anything started: the daemon can still be started properly.
            string path = NewPath();
            daemon.Start(path);
            Assert.Equal(path, daemon.SocketPath);
        }

        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public unsafe void A_datagram_socket_and_a_TCP_socket_are_refused_with_what_they_are()
    {
        // .NET's socket layer opens fds of its own on first use: let it, before counting.
        using (var warm = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            _ = warm.Handle;
        }

        int before = OpenFds.Count();
        int* sv = stackalloc int[2];
        Assert.Equal(0, Interop.socketpair(Interop.AF_UNIX, 2 /* SOCK_DGRAM */ | Interop.SOCK_CLOEXEC, 0, sv));
        using (SafeFileHandle dgram = Fd.Own(sv[0]))
        using (SafeFileHandle other = Fd.Own(sv[1]))
        using (var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        using (var daemon = new VhostUserDaemon(new EchoDevice()))
        {
            Assert.Contains("datagram (SOCK_DGRAM)", Assert.Throws<ArgumentException>(() => daemon.Start(dgram)).Message, StringComparison.Ordinal);
            using var tcpHandle = new SafeFileHandle(tcp.Handle, ownsHandle: false);
            Assert.Contains("not a Unix socket", Assert.Throws<ArgumentException>(() => daemon.Start(tcpHandle)).Message, StringComparison.Ordinal);
            Assert.False(dgram.IsClosed);
        }

        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public void Socket_activation_meant_for_another_process_is_refused_and_closes_nothing()
    {
        int before = OpenFds.Count();
        string path = NewPath();
        using (SafeFileHandle listening = UnixSocket.Listen(path))
        {
            File.Delete(path);
            int fd = (int)listening.DangerousGetHandle();
            var e = Assert.Throws<InvalidOperationException>(() => SystemdSocketActivation.Take("1", (Environment.ProcessId + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), Environment.ProcessId, fd));
            Assert.Contains("names another process", e.Message, StringComparison.Ordinal);
            Assert.False(listening.IsClosed);

            // A passed fd that is no socket: refused by name, not closed.
            using SafeFileHandle memfd = Fd.CreateMemFd("passed", 4096);
            var notSocket = Assert.Throws<ArgumentException>(() => SystemdSocketActivation.Take("1", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), Environment.ProcessId, (int)memfd.DangerousGetHandle()));
            Assert.Contains("is not a socket", notSocket.Message, StringComparison.Ordinal);
            Assert.False(memfd.IsClosed);
        }

        Assert.Equal(before, OpenFds.Count());
    }
}
