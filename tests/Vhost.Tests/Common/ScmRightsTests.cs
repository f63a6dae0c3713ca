using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests.Common;

[Collection("FdCount")]
public sealed class ScmRightsTests
{
    private static readonly byte[] Payload = [0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(32)]
    public void Round_trip_delivers_exactly_the_fds_sent(int count)
    {
        var (a, b) = UnixSocket.CreatePair();
        SafeFileHandle[] sent = CreateMemFds(count);
        var received = new List<SafeFileHandle>();
        try
        {
            ScmRights.SendAll(a, Payload, (SafeHandle[])sent);

            var buffer = new byte[256];
            int n = ScmRights.TryReceive(b, buffer, received, out global::Interop.Error errno);
            Assert.Equal(Errno.None, (Errno)errno);
            Assert.Equal(Payload, buffer[..n]);

            // Exactly the sent files, in order, and nothing else (no stray fd 0 on odd counts).
            Assert.Equal(count, received.Count);
            for (int i = 0; i < count; i++)
            {
                global::Interop.FileStatus want = Fd.Stat(sent[i]);
                global::Interop.FileStatus got = Fd.Stat(received[i]);
                Assert.Equal((want.Device, want.Inode), (got.Device, got.Inode));
                Assert.NotEqual(sent[i].DangerousGetHandle(), received[i].DangerousGetHandle());
                Assert.True(Fd.IsCloseOnExec(received[i]), $"received fd #{i} lacks FD_CLOEXEC");
            }

            // The sender keeps its own fds.
            foreach (SafeFileHandle fd in sent)
            {
                Assert.Equal(0L, Fd.Stat(fd).Size);
            }
        }
        finally
        {
            DisposeAll(received);
            DisposeAll(sent);
            a.Dispose();
            b.Dispose();
        }
    }

    [Fact]
    public void A_thousand_round_trips_leave_the_fd_count_unchanged()
    {
        int initial = OpenFds.Count();
        var (a, b) = UnixSocket.CreatePair();
        SafeHandle[] pool = CreateMemFds(32);
        int[] counts = [0, 1, 2, 3, 32];
        var received = new List<SafeFileHandle>(32);
        var buffer = new byte[64];
        try
        {
            int before = OpenFds.Count();
            for (int i = 0; i < 1000; i++)
            {
                int count = counts[i % counts.Length];
                ScmRights.SendAll(a, Payload, new ReadOnlySpan<SafeHandle>(pool, 0, count));
                int n = ScmRights.TryReceive(b, buffer, received, out _);
                Assert.Equal(Payload.Length, n);
                Assert.Equal(count, received.Count);
                DisposeAll(received);
                received.Clear();
            }

            Assert.Equal(before, OpenFds.Count());
        }
        finally
        {
            DisposeAll(pool);
            a.Dispose();
            b.Dispose();
        }

        Assert.Equal(initial, OpenFds.Count());
    }

    [Fact]
    public void Thirty_three_fds_are_refused_before_anything_is_sent()
    {
        var (a, b) = UnixSocket.CreatePair();
        SafeFileHandle[] fds = CreateMemFds(33);
        try
        {
            var e = Assert.Throws<ArgumentException>(() => ScmRights.SendAll(a, Payload, (SafeHandle[])fds));
            Assert.Equal("fds", e.ParamName);
            Assert.Throws<ArgumentException>(() => ScmRights.TrySend(a, Payload, (SafeHandle[])fds, out _));

            var received = new List<SafeFileHandle>();
            Assert.Equal(-1, ScmRights.TryReceive(b, new byte[64], received, out global::Interop.Error errno, global::Interop.MSG_DONTWAIT));
            Assert.Equal(Errno.EAGAIN, (Errno)errno);
            Assert.Empty(received);
        }
        finally
        {
            DisposeAll(fds);
            a.Dispose();
            b.Dispose();
        }
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 4)]
    [InlineData(32, 31)]
    [InlineData(32, 0)]
    public void More_fds_than_the_receive_buffer_holds_is_ENOBUFS_and_leaks_nothing(int sentCount, int maxFds)
    {
        var (a, b) = UnixSocket.CreatePair();
        SafeFileHandle[] sent = CreateMemFds(sentCount);
        using SafeFileHandle earlier = Fd.CreateMemFd("earlier", 0);
        var received = new List<SafeFileHandle> { earlier };
        try
        {
            ScmRights.SendAll(a, Payload, (SafeHandle[])sent);
            int before = OpenFds.Count();

            var e = Assert.Throws<VhostException>(() => ScmRights.TryReceive(b, new byte[64], received, out _, maxFds: maxFds));
            Assert.Equal(Errno.ENOBUFS, e.Errno);
            Assert.Equal("recvmsg", e.Operation);
            Assert.Contains("MSG_CTRUNC", e.Message);

            // Every fd that did arrive was closed; what the list held before is untouched.
            Assert.Equal(before, OpenFds.Count());
            Assert.Single(received);
            Assert.Same(earlier, received[0]);
            Assert.False(earlier.IsClosed);
        }
        finally
        {
            DisposeAll(sent);
            a.Dispose();
            b.Dispose();
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(32)]
    public void A_receive_buffer_of_exactly_the_sent_count_is_enough(int count)
    {
        var (a, b) = UnixSocket.CreatePair();
        SafeFileHandle[] sent = CreateMemFds(count);
        var received = new List<SafeFileHandle>();
        try
        {
            ScmRights.SendAll(a, Payload, (SafeHandle[])sent);
            Assert.Equal(Payload.Length, ScmRights.TryReceive(b, new byte[64], received, out _, maxFds: count));
            Assert.Equal(count, received.Count);
        }
        finally
        {
            DisposeAll(received);
            DisposeAll(sent);
            a.Dispose();
            b.Dispose();
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(33)]
    public void MaxFds_outside_0_to_32_is_refused(int maxFds)
    {
        var (a, b) = UnixSocket.CreatePair();
        using (a)
        using (b)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ScmRights.TryReceive(b, new byte[8], [], out _, maxFds: maxFds));
            Assert.Equal("maxFds", e.ParamName);
        }
    }

    [Fact]
    public void A_closed_fd_in_the_list_throws_and_releases_the_references_taken()
    {
        int before = OpenFds.Count();
        var (a, b) = UnixSocket.CreatePair();
        SafeFileHandle good = Fd.CreateMemFd("good", 0);
        SafeFileHandle closed = Fd.CreateMemFd("closed", 0);
        closed.Dispose();

        Assert.Throws<ObjectDisposedException>(() => ScmRights.TrySend(a, Payload, (SafeHandle[])[good, closed], out _));
        Assert.Throws<ArgumentNullException>(() => ScmRights.TrySend(a, Payload, (SafeHandle[])[good, null!], out _));

        // If a reference on `good` had leaked, Dispose would not close its fd.
        good.Dispose();
        a.Dispose();
        b.Dispose();
        Assert.Equal(before, OpenFds.Count());
    }

    [Fact]
    public void Sending_to_a_closed_peer_is_EPIPE_not_SIGPIPE()
    {
        var (a, b) = UnixSocket.CreatePair();
        b.Dispose();
        using (a)
        {
            Assert.Equal(-1, ScmRights.TrySend(a, Payload, [], out global::Interop.Error errno));
            Assert.Equal(Errno.EPIPE, (Errno)errno);
            var e = Assert.Throws<VhostException>(() => ScmRights.SendAll(a, Payload, []));
            Assert.Equal(Errno.EPIPE, e.Errno);
            Assert.Equal("sendmsg", e.Operation);
        }
    }

    [Fact]
    public void Orderly_close_reads_zero_bytes()
    {
        var (a, b) = UnixSocket.CreatePair();
        a.Dispose();
        using (b)
        {
            var received = new List<SafeFileHandle>();
            Assert.Equal(0, ScmRights.TryReceive(b, new byte[16], received, out global::Interop.Error errno));
            Assert.Equal(Errno.None, (Errno)errno);
            Assert.Empty(received);
        }
    }

    internal static SafeFileHandle[] CreateMemFds(int count)
        => Enumerable.Range(0, count).Select(i => Fd.CreateMemFd("scm-" + i, 0)).ToArray();

    internal static void DisposeAll(IEnumerable<SafeHandle> handles)
    {
        foreach (SafeHandle handle in handles)
        {
            handle.Dispose();
        }
    }
}
