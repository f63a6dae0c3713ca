using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

[Collection("FdCount")]
public sealed class ConnectionTests
{
    private static byte[] Header(uint request, uint flags, uint size)
    {
        var bytes = new byte[12];
        var h = new VhostUserHeader { Request = request, Flags = (VhostUserHeaderFlags)flags, Size = size };
        MemoryMarshal.Write(bytes, in h);
        return bytes;
    }

    private static T ReceiveFails<T>(Action<VhostUserConnection> send)
        where T : VhostUserException
    {
        int before = TestFds.Count();
        VhostUserException e;
        {
            var (a, b) = VhostUserConnection.CreatePair();
            using (a)
            using (b)
            {
                send(a);
                e = Assert.ThrowsAny<VhostUserException>(() => b.Receive(2000).Dispose());
            }
        }

        Assert.Equal(before, TestFds.Count());
        return Assert.IsType<T>(e);
    }

    [Fact]
    public void Message_round_trips_with_its_fds()
    {
        int before = TestFds.Count();
        var (a, b) = VhostUserConnection.CreatePair();
        using (a)
        using (b)
        using (SafeFileHandle m1 = TestFds.MemFd())
        using (SafeFileHandle m2 = TestFds.MemFd())
        {
            a.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.NeedReply, new VhostUserU64(0x1234), [m1, m2]);
            a.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
            using (VhostUserMessage msg = b.Receive(2000))
            {
                Assert.Equal((uint)FrontendRequest.SetFeatures, msg.Header.Request);
                Assert.True(msg.Header.NeedsReply);
                Assert.Equal(0x1234UL, msg.Read<VhostUserU64>().Value);
                Assert.Equal(2, msg.Fds.Count);
                using SafeFileHandle r1 = msg.Fds.Take(0);
                Assert.Equal(TestFds.Identity(m1), TestFds.Identity(r1));
                Assert.True(Fd.IsCloseOnExec(r1));
                Assert.Throws<InvalidOperationException>(() => msg.Fds.Take(0));
                Assert.Equal(1, msg.Fds.Remaining);
            }

            using (VhostUserMessage msg = b.Receive(2000))
            {
                Assert.Equal((uint)FrontendRequest.GetFeatures, msg.Header.Request);
                Assert.Equal(0, msg.Fds.Count);
                Assert.True(msg.Body.IsEmpty);
            }
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Orderly_close_is_Disconnected()
        => Assert.Equal(VhostUserCloseKind.Orderly, ReceiveFails<VhostUserConnectionClosedException>(a => a.Dispose()).Kind);

    [Fact]
    public void Truncated_header_then_close_is_PartialMessage()
        => Assert.Equal(VhostUserCloseKind.Truncated, ReceiveFails<VhostUserConnectionClosedException>(a => { a.SendRaw(Header(1, 1, 0).AsSpan(0, 5)); a.Dispose(); }).Kind);

    [Fact]
    public void Truncated_body_then_close_is_PartialMessage()
    {
        using SafeFileHandle m = TestFds.MemFd();
        Assert.Equal(VhostUserCloseKind.Truncated, ReceiveFails<VhostUserConnectionClosedException>(a => { a.SendRaw([.. Header(2, 1, 8), 1, 2, 3], [m]); a.Dispose(); }).Kind);
    }

    [Fact]
    public void Wrong_version_is_InvalidHeader()
        => Assert.Equal(VhostUserViolation.InvalidHeader, ReceiveFails<VhostUserProtocolException>(a => a.SendRaw(Header(1, 2, 0))).Violation);

    [Fact]
    public void Reserved_flag_is_InvalidHeader()
        => ReceiveFails<VhostUserProtocolException>(a => a.SendRaw(Header(1, 1 | 0x20, 0)));

    [Fact]
    public void Size_over_limit_is_OversizedMessage_and_closes_its_fds()
    {
        using SafeFileHandle m = TestFds.MemFd();
        ReceiveFails<VhostUserProtocolException>(a => a.SendRaw(Header(1, 1, 0x1001), [m]));
    }

    [Fact]
    public void Fds_arriving_with_body_bytes_are_IncorrectFds_and_closed()
    {
        using SafeFileHandle m = TestFds.MemFd();
        ReceiveFails<VhostUserProtocolException>(
            a =>
            {
                a.SendRaw(Header(2, 1, 8));
                a.SendRaw(new byte[8], [m]);
            });
    }

    [Fact]
    public void More_fds_than_the_limit_are_IncorrectFds_and_closed()
    {
        var memfds = Enumerable.Range(0, 9).Select(_ => TestFds.MemFd()).ToArray();
        try
        {
            ReceiveFails<VhostUserProtocolException>(a => a.SendRaw(Header(5, 1, 0), memfds));
        }
        finally
        {
            foreach (var m in memfds)
            {
                m.Dispose();
            }
        }
    }

    [Fact]
    public void Receive_times_out()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (a)
        using (b)
        {
            var e = Assert.Throws<VhostUserTimeoutException>(() => b.Receive(50));
            Assert.Equal(Errno.ETIMEDOUT, e.Errno);
        }
    }

    [Fact]
    public void Receive_is_cancellable()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (a)
        using (b)
        {
            using var cts = new CancellationTokenSource(50);
            Assert.ThrowsAny<OperationCanceledException>(() => b.Receive(-1, cts.Token));
        }
    }

    [Fact]
    public void Shutdown_from_another_thread_wakes_a_blocked_receive()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (a)
        using (b)
        {
            var task = Task.Run(() => Assert.ThrowsAny<VhostUserException>(() => b.Receive()));
            Thread.Sleep(50);
            b.Shutdown();
            Assert.True(task.Wait(5000));
            Assert.Equal(VhostUserCloseKind.Orderly, Assert.IsType<VhostUserConnectionClosedException>(task.Result).Kind);
        }
    }

    [Fact]
    public void Send_to_a_closed_peer_is_SocketBroken()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (a)
        {
            b.Dispose();
            var e = Assert.Throws<VhostUserConnectionClosedException>(() => a.Send(1, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty));
            Assert.True(e.ShouldReconnect);
        }
    }

    [Fact]
    public void Send_rejects_oversized_payload_and_too_many_fds()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (a)
        using (b)
        {
            Assert.Throws<VhostUserProtocolException>(() => a.Send(1, 0, new byte[0x1001]));
            var fds = new SafeHandle[9];
            Array.Fill(fds, a.Handle);
            Assert.Throws<VhostUserProtocolException>(() => a.Send(1, 0, ReadOnlySpan<byte>.Empty, fds));
        }
    }

    [Fact]
    public void Listener_creates_0600_socket_accepts_and_unlinks()
    {
        int before = TestFds.Count();
        string path = TestFds.SocketPath();
        using (var listener = new VhostUserListener(path))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Null(listener.TryAccept(TimeSpan.FromMilliseconds(20)));
            using var client = new VhostUserConnection(VhostUserConnector.Connect(path, TimeSpan.FromSeconds(1)));
            using var server = new VhostUserConnection(listener.Accept());
            client.Send(1, 0, ReadOnlySpan<byte>.Empty);
            using VhostUserMessage m = server.Receive(2000);
            Assert.Equal(1u, m.Header.Request);
        }

        Assert.False(File.Exists(path));
        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Listener_honours_a_custom_mode()
    {
        string path = TestFds.SocketPath();
        using var listener = new VhostUserListener(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Listener_replaces_a_stale_socket_but_not_a_live_one_or_a_file()
    {
        string path = TestFds.SocketPath();
        var first = new VhostUserListener(path);
        var e = Assert.ThrowsAny<VhostUserException>(() => new VhostUserListener(path));
        Assert.Equal(Errno.EADDRINUSE, e.Errno);

        // Make it stale: close the socket but leave the file behind.
        first.Handle.Dispose();
        Assert.True(File.Exists(path));
        using (var second = new VhostUserListener(path))
        {
            Assert.True(File.Exists(path));
        }

        first.Dispose();
        File.WriteAllText(path, "not a socket");
        try
        {
            Assert.ThrowsAny<VhostUserException>(() => new VhostUserListener(path));
            Assert.Equal("not a socket", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Accept_is_cancellable()
    {
        using var listener = new VhostUserListener(TestFds.SocketPath());
        using var cts = new CancellationTokenSource(50);
        Assert.ThrowsAny<OperationCanceledException>(() => listener.Accept(cts.Token));
    }

    [Fact]
    public void Connector_retries_until_the_listener_appears()
    {
        string path = TestFds.SocketPath();
        VhostUserListener? listener = null;
        var starter = Task.Run(() =>
        {
            Thread.Sleep(150);
            listener = new VhostUserListener(path);
        });
        try
        {
            using var c = new VhostUserConnection(VhostUserConnector.Connect(path, TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(20)));
            starter.Wait();
        }
        finally
        {
            starter.Wait();
            listener?.Dispose();
        }
    }

    [Fact]
    public void Connector_gives_up_with_SocketConnect()
    {
        var e = Assert.Throws<VhostUserException>(() => VhostUserConnector.Connect(TestFds.SocketPath(), TimeSpan.FromMilliseconds(60), TimeSpan.FromMilliseconds(20)));
        Assert.Equal(Errno.ENOENT, e.Errno);
    }
}
