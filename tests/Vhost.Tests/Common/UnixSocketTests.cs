using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

public sealed class UnixSocketTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"vhost-{Guid.NewGuid():N}.sock");

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void Accept_times_out_with_null_then_accepts_a_connection()
    {
        using SafeFileHandle listener = UnixSocket.Listen(_path);
        Assert.True(Fd.IsCloseOnExec(listener));
        Assert.Null(UnixSocket.Accept(listener, timeoutMilliseconds: 20));

        using SafeFileHandle client = UnixSocket.Connect(_path);
        using SafeFileHandle? server = UnixSocket.Accept(listener, timeoutMilliseconds: 5000);
        Assert.NotNull(server);
        Assert.True(Fd.IsCloseOnExec(client));
        Assert.True(Fd.IsCloseOnExec(server));

        Fd.Write(client, "ping"u8);
        var buffer = new byte[4];
        Assert.Equal(4, Fd.Read(server, buffer));
        Assert.Equal("ping"u8.ToArray(), buffer);

        // Only one connection was pending.
        Assert.Null(UnixSocket.Accept(listener, timeoutMilliseconds: 0));
    }

    [Fact]
    public void Peer_credentials_are_our_pid_and_uid()
    {
        using SafeFileHandle listener = UnixSocket.Listen(_path);
        using SafeFileHandle client = UnixSocket.Connect(_path);
        using SafeFileHandle server = UnixSocket.Accept(listener, 5000)!;
        (uint uid, uint gid) = EffectiveIds();

        global::Interop.ucred seenByServer = UnixSocket.PeerCredentials(server);
        Assert.Equal(Environment.ProcessId, seenByServer.pid);
        Assert.Equal(uid, seenByServer.uid);
        Assert.Equal(gid, seenByServer.gid);

        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            Assert.Equal(Environment.ProcessId, UnixSocket.PeerCredentials(a).pid);
        }
    }

    [Fact]
    public void Connecting_to_a_missing_path_is_ENOENT_naming_the_path()
    {
        var e = Assert.Throws<VhostException>(() => UnixSocket.Connect(_path));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Equal("connect", e.Operation);
        Assert.Contains(_path, e.Message);
    }

    [Fact]
    public void Connecting_to_a_socket_nobody_listens_on_is_ECONNREFUSED()
    {
        UnixSocket.Listen(_path).Dispose(); // the socket file stays behind
        Assert.True(File.Exists(_path));
        Assert.Equal(Errno.ECONNREFUSED, Assert.Throws<VhostException>(() => UnixSocket.Connect(_path)).Errno);
    }

    [Fact]
    public void Listening_on_a_path_in_use_is_EADDRINUSE()
    {
        using SafeFileHandle listener = UnixSocket.Listen(_path);
        var e = Assert.Throws<VhostException>(() => UnixSocket.Listen(_path));
        Assert.Equal(Errno.EADDRINUSE, e.Errno);
        Assert.Equal("bind", e.Operation);
    }

    [Fact]
    public void Paths_that_do_not_fit_sockaddr_un_are_argument_errors()
    {
        string tooLong = "/tmp/" + new string('x', 103); // 108 bytes: no room for the terminating NUL
        Assert.Equal("path", Assert.Throws<ArgumentException>(() => UnixSocket.Listen(tooLong)).ParamName);
        Assert.Equal("path", Assert.Throws<ArgumentException>(() => UnixSocket.Connect(tooLong)).ParamName);
        Assert.Equal("path", Assert.Throws<ArgumentException>(() => UnixSocket.Connect(string.Empty)).ParamName);

        string longest = "/tmp/" + new string('y', 102); // 107 bytes fits
        Assert.Equal(2u + 107u + 1u, UnixSocket.FillAddress(longest, out global::Interop.sockaddr_un address));
        Assert.Equal(global::Interop.AF_UNIX, address.sun_family);
    }

    [Fact]
    public void Shutdown_makes_the_peer_read_end_of_file()
    {
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            UnixSocket.Shutdown(a);
            Assert.Equal(0, Fd.Read(b, new byte[8]));
            UnixSocket.Shutdown(a); // idempotent
        }
    }

    [Fact]
    public void A_nonblocking_pair_reports_EAGAIN_and_WaitReady_times_out()
    {
        var (a, b) = UnixSocket.CreatePair(nonBlocking: true);
        using (a)
        using (b)
        {
            Assert.True(Fd.IsNonBlocking(a));
            Assert.Equal(-1, Fd.TryRead(a, new byte[1], out global::Interop.Error errno));
            Assert.Equal(Errno.EAGAIN, (Errno)errno);
            Assert.False(UnixSocket.WaitReady(a, global::Interop.POLLIN, 10));
            Fd.Write(b, [1]);
            Assert.True(UnixSocket.WaitReady(a, global::Interop.POLLIN, 1000));
        }
    }

    /// <summary>The effective uid and gid from /proc/self/status (real, effective, saved, fs).</summary>
    private static (uint Uid, uint Gid) EffectiveIds()
    {
        string[] lines = File.ReadAllLines("/proc/self/status");
        static uint Effective(string line) => uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);
        return (Effective(lines.Single(l => l.StartsWith("Uid:", StringComparison.Ordinal))),
                Effective(lines.Single(l => l.StartsWith("Gid:", StringComparison.Ordinal))));
    }
}
