using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>Every back-end message, from <see cref="VhostUserBackendChannel"/> to the front-end's handler thread, and back.</summary>
[Collection("FdCount")]
public sealed class BackendChannelPairTests
{
    private static void WaitFor(Func<bool> condition)
    {
        var deadline = Environment.TickCount64 + 5000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "timed out");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void Every_backend_message_reaches_the_frontend_handler()
    {
        int before = TestFds.Count();
        using (var pair = new ProtocolPair())
        using (var feHandler = new RecordingFrontendHandler())
        using (SafeFileHandle area = TestFds.MemFd(0x2000))
        {
            pair.Negotiate();
            pair.Frontend.SetBackendRequestFd(feHandler);
            Assert.Equal("SetBackendRequestFd", pair.Handler.Last);
            VhostUserBackendChannel channel = pair.Handler.Channel!;
            Assert.True((channel.ProtocolFeatures & VhostUserProtocolFeatures.ReplyAck) != 0);

            channel.SendConfigChange();
            Assert.Equal("ConfigChange", feHandler.Calls[^1]);
            channel.SendIotlbMessage(new VhostUserIotlbMessage { Type = VhostIotlbType.Miss, Iova = 0x4000, Permission = VhostIotlbAccess.ReadOnly });
            Assert.Equal("IotlbMessage Miss 4000 ReadOnly", feHandler.Calls[^1]);
            channel.SetVringHostNotifier(3, 0x1000, 0x1000, area);
            Assert.Equal("VringHostNotifier 3 False 1000 1000", feHandler.Calls[^1]);
            Assert.Equal(TestFds.Identity(area), TestFds.Identity(feHandler.Fds[^1]));
            channel.SetVringHostNotifier(3, 0, 0, null);
            Assert.Equal("VringHostNotifier 3 True 0 0", feHandler.Calls[^1]);
            channel.SendVringCall(1);
            // A notification asks for no reply: wait until the handler has it.
            WaitForLastCall(feHandler, "VringCall 1");
            channel.SendVringError(2);
            // A notification asks for no reply: wait until the handler has it.
            WaitForLastCall(feHandler, "VringError 2");
            var uuid = Guid.NewGuid();
            channel.SharedObjectAdd(uuid);
            Assert.Equal($"SharedObjectAdd {uuid}", feHandler.Calls[^1]);
            channel.SharedObjectRemove(uuid);
            Assert.Equal($"SharedObjectRemove {uuid}", feHandler.Calls[^1]);
            feHandler.LookupResult = TestFds.MemFd(0x3000, "dmabuf");
            using (SafeFileHandle dmabuf = channel.SharedObjectLookup(uuid))
            {
                Assert.Equal($"SharedObjectLookup {uuid}", feHandler.Calls[^1]);
                Assert.Equal(TestFds.Identity(feHandler.LookupResult), TestFds.Identity(dmabuf));
            }

            var map = new VhostUserShmemMap { ShmemId = 1, FdOffset = 0x1000, ShmemOffset = 0x20000, Length = 0x1000, Flags = VhostUserShmemMapFlags.Writable };
            channel.ShmemMap(map, area);
            Assert.Equal("ShmemMap 1 1000 20000 1000 Writable", feHandler.Calls[^1]);
            Assert.Equal(TestFds.Identity(area), TestFds.Identity(feHandler.Fds[^1]));
            channel.ShmemUnmap(map);
            Assert.Equal("ShmemUnmap 1 20000 1000", feHandler.Calls[^1]);

            // A handler failure comes back as the negative errno.
            feHandler.FailNext = Errno.EBUSY;
            var e = Assert.Throws<VhostUserPeerRefusedException>(channel.SendConfigChange);
            Assert.Equal(unchecked((ulong)-(long)Errno.EBUSY), e.ReplyCode);

            // An unknown object fails the lookup without an fd.
            feHandler.LookupResult.Dispose();
            feHandler.LookupResult = null;
            Assert.Throws<VhostUserPeerRefusedException>(() => channel.SharedObjectLookup(uuid));

            // The channel is still in step.
            channel.SendVringCall(0);
            // A notification asks for no reply: wait until the handler has it.
            WaitForLastCall(feHandler, "VringCall 0");
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Backend_channel_gates_requests_on_negotiated_features()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (b)
        using (var channel = new VhostUserBackendChannel(a, VhostUserProtocolFeatures.ReplyAck))
        {
            Assert.Throws<InvalidOperationException>(channel.SendConfigChange);
            Assert.Throws<InvalidOperationException>(() => channel.SendVringCall(0));
            Assert.Throws<InvalidOperationException>(() => channel.SharedObjectAdd(Guid.NewGuid()));
            Assert.Throws<InvalidOperationException>(() => channel.ShmemUnmap(new VhostUserShmemMap { Length = 1 }));
            Assert.Throws<InvalidOperationException>(() => channel.SendIotlbMessage(new VhostUserIotlbMessage { Type = VhostIotlbType.Miss }));
            Assert.False(b.WaitReadable(20), "nothing may be sent for a gated request");
        }
    }

    [Fact]
    public void Backend_channel_rejects_bad_replies_and_times_out()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (b)
        using (var channel = new VhostUserBackendChannel(a, VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config) { ReplyTimeout = TimeSpan.FromMilliseconds(100) })
        {
            var peer = Task.Run(() =>
            {
                using VhostUserMessage m = b.Receive(2000);
                Assert.True(m.Header.NeedsReply);
                b.Send((uint)BackendRequest.VringCall, VhostUserHeaderFlags.Reply, new VhostUserU64(0));
            });
            var e = Assert.Throws<VhostUserProtocolException>(channel.SendConfigChange);
            peer.Wait();
            Assert.Throws<InvalidOperationException>(channel.SendConfigChange);
        }

        (a, b) = VhostUserConnection.CreatePair();
        using (b)
        using (var channel = new VhostUserBackendChannel(a, VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config) { ReplyTimeout = TimeSpan.FromMilliseconds(100) })
        {
            var e = Assert.Throws<VhostUserTimeoutException>(channel.SendConfigChange);
        }
    }

    [Fact]
    public void Frontend_dispatcher_rejects_gated_and_unknown_requests()
    {
        int before = TestFds.Count();
        var (a, b) = VhostUserConnection.CreatePair();
        using (var feHandler = new RecordingFrontendHandler())
        using (a)
        using (var dispatcher = new VhostUserFrontendRequestDispatcher(b, feHandler, VhostUserProtocolFeatures.ReplyAck))
        {
            a.Send((uint)BackendRequest.ConfigChangeMsg, VhostUserHeaderFlags.NeedReply, ReadOnlySpan<byte>.Empty);
            Assert.Throws<VhostUserProtocolException>(() => dispatcher.HandleNextRequest(2000));
            using (VhostUserMessage reply = a.Receive(2000))
            {
                Assert.Equal(unchecked((ulong)-(long)Errno.EINVAL), reply.Read<VhostUserU64>().Value);
            }

            a.Send(99, VhostUserHeaderFlags.NeedReply, ReadOnlySpan<byte>.Empty);
            Assert.Throws<VhostUserProtocolException>(() => dispatcher.HandleNextRequest(2000));
            using (VhostUserMessage reply = a.Receive(2000))
            {
                Assert.NotEqual(0UL, reply.Read<VhostUserU64>().Value);
            }

            using SafeFileHandle m = TestFds.MemFd();
            a.Send((uint)BackendRequest.VringCall, VhostUserHeaderFlags.None, new VhostUserVringState(0, 0), [m]);
            Assert.Throws<VhostUserProtocolException>(() => dispatcher.HandleNextRequest(2000));
            Assert.Empty(feHandler.Calls);
        }

        Assert.Equal(before, TestFds.Count());
    }

    private static void WaitForLastCall(RecordingFrontendHandler handler, string call)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (handler.Calls is not [.., string last] || last != call)
        {
            Assert.True(Environment.TickCount64 < deadline, $"the front-end never got {call}");
            Thread.Sleep(1);
        }
    }
}
