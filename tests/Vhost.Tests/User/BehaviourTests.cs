using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>Feature gating, REPLY_ACK, reply validation, timeouts, and the behaviours of section 7 of the reference.</summary>
[Collection("FdCount")]
public sealed class BehaviourTests
{
    [Fact]
    public void Frontend_gates_requests_without_sending_them()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate(VhostUserProtocolFeatures.ReplyAck);
        VhostUserFrontend fe = pair.Frontend;
        int calls = pair.Handler.Calls.Count;
        Assert.Throws<InvalidOperationException>(() => fe.GetQueueNum());
        Assert.Throws<InvalidOperationException>(() => fe.GetConfig(0, 4, VhostUserConfigFlags.None));
        Assert.Throws<InvalidOperationException>(() => fe.GetShmemConfig());
        Assert.Throws<InvalidOperationException>(() => fe.SetStatus(1));
        Assert.Throws<InvalidOperationException>(() => fe.SetBackendRequestFd(new RecordingFrontendHandler()));
        Assert.Equal(calls, pair.Handler.Calls.Count);
        fe.SetVringNum(0, 64);
        Assert.Equal("SetVringNum 0 64", pair.Handler.Last);
    }

    [Fact]
    public void Protocol_features_need_the_protocol_features_bit()
    {
        var handler = new RecordingBackendHandler { Features = 0x3 };
        using var pair = new ProtocolPair(handler);
        Assert.Throws<InvalidOperationException>(() => pair.Frontend.GetProtocolFeatures());
        pair.Frontend.GetFeatures();
        Assert.Throws<InvalidOperationException>(() => pair.Frontend.GetProtocolFeatures());
        Assert.Throws<InvalidOperationException>(() => pair.Frontend.SetVringEnable(0, true));
    }

    [Fact]
    public void Dispatcher_gates_requests_and_acks_the_failure()
    {
        var (raw, b) = VhostUserConnection.CreatePair();
        using var handler = new RecordingBackendHandler();
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            raw.Send((uint)FrontendRequest.SetStatus, VhostUserHeaderFlags.NeedReply, new VhostUserU64(1));
            Assert.Throws<VhostUserProtocolException>(() => dispatcher.HandleNextRequest(2000));
            using VhostUserMessage reply = raw.Receive(2000);
            Assert.True(reply.Header.IsReply);
            Assert.Equal(1UL, reply.Read<VhostUserU64>().Value);
            Assert.Empty(handler.Calls);
        }
    }

    [Fact]
    public void Reply_ack_reports_success_and_handler_failure()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate();
        VhostUserFrontend fe = pair.Frontend;
        pair.Handler.FailNext = Errno.EIO;
        var e = Assert.Throws<VhostUserPeerRefusedException>(() => fe.SetVringNum(0, 64));
        Assert.Equal(1UL, e.ReplyCode);
        Assert.False(e.ShouldReconnect);

        // The stream is in step and the dispatcher kept serving.
        fe.SetVringNum(0, 128);
        Assert.Equal("SetVringNum 0 128", pair.Handler.Last);
        Assert.Null(pair.RunError);
    }

    [Fact]
    public void Get_config_failure_is_a_size_zero_reply()
    {
        var (raw, b) = VhostUserConnection.CreatePair();
        using var handler = new RecordingBackendHandler();
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            using var pair = new ProtocolPair();
            pair.Negotiate();
            pair.Handler.FailNext = Errno.EIO;
            var e = Assert.Throws<VhostUserPeerRefusedException>(() => pair.Frontend.GetConfig(0, 8, VhostUserConfigFlags.None));
            Assert.Equal(new byte[] { 0, 1 }, pair.Frontend.GetConfig(0, 2, VhostUserConfigFlags.None));

            // On the wire: header with size 0.
            handler.Offered = VhostUserProtocolFeatures.Config;
            raw.Send((uint)FrontendRequest.GetFeatures, 0, ReadOnlySpan<byte>.Empty);
            dispatcher.HandleNextRequest(2000);
            raw.Receive(2000).Dispose();
            raw.Send((uint)FrontendRequest.GetProtocolFeatures, 0, ReadOnlySpan<byte>.Empty);
            dispatcher.HandleNextRequest(2000);
            raw.Receive(2000).Dispose();
            raw.Send((uint)FrontendRequest.SetProtocolFeatures, 0, new VhostUserU64((ulong)VhostUserProtocolFeatures.Config));
            dispatcher.HandleNextRequest(2000);
            handler.FailNext = Errno.EIO;
            var payload = new byte[12 + 4];
            MemoryMarshal.Write(payload, new VhostUserConfigHeader(0, 4, VhostUserConfigFlags.None));
            raw.Send((uint)FrontendRequest.GetConfig, 0, payload);
            Assert.ThrowsAny<VhostUserException>(() => dispatcher.HandleNextRequest(2000));
            using VhostUserMessage reply = raw.Receive(2000);
            Assert.Equal((uint)FrontendRequest.GetConfig, reply.Header.Request);
            Assert.True(reply.Header.IsReply);
            Assert.Equal(0u, reply.Header.Size);
        }
    }

    [Fact]
    public void Set_device_state_fd_reply_encoding()
    {
        int before = TestFds.Count();
        var (raw, b) = VhostUserConnection.CreatePair();
        using (var handler = new RecordingBackendHandler { Offered = VhostUserProtocolFeatures.DeviceState })
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        using (SafeFileHandle pipe = TestFds.MemFd())
        {
            raw.Send((uint)FrontendRequest.GetFeatures, 0, ReadOnlySpan<byte>.Empty);
            dispatcher.HandleNextRequest(2000);
            raw.Receive(2000).Dispose();
            raw.Send((uint)FrontendRequest.SetProtocolFeatures, 0, new VhostUserU64((ulong)VhostUserProtocolFeatures.DeviceState));
            dispatcher.HandleNextRequest(2000);

            var transfer = new VhostUserDeviceStateTransfer(VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped);
            raw.Send((uint)FrontendRequest.SetDeviceStateFd, 0, transfer, [pipe]);
            dispatcher.HandleNextRequest(2000);
            using (VhostUserMessage reply = raw.Receive(2000))
            {
                Assert.Equal(0x100UL, reply.Read<VhostUserU64>().Value);
                Assert.Equal(0, reply.Fds.Count);
            }

            handler.FailNext = Errno.EIO;
            raw.Send((uint)FrontendRequest.SetDeviceStateFd, 0, transfer, [pipe]);
            Assert.ThrowsAny<VhostUserException>(() => dispatcher.HandleNextRequest(2000));
            using (VhostUserMessage reply = raw.Receive(2000))
            {
                Assert.Equal(0x101UL, reply.Read<VhostUserU64>().Value);
                Assert.Equal(0, reply.Fds.Count);
            }
        }

        Assert.Equal(before, TestFds.Count());
    }

    private static VhostUserException FrontendRejectsReply(Action<VhostUserConnection, VhostUserMessage> reply)
    {
        var (a, raw) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(a) { ReplyTimeout = TimeSpan.FromMilliseconds(200) };
        var peer = Task.Run(() =>
        {
            using (raw)
            {
                using VhostUserMessage m = raw.Receive(2000);
                reply(raw, m);
                raw.WaitReadable(1000);
            }
        });
        var e = Assert.ThrowsAny<VhostUserException>(() => fe.GetFeatures());
        fe.Dispose();
        peer.Wait();
        return e;
    }

    [Fact]
    public void Reply_that_does_not_echo_the_request_code_is_rejected()
        => Assert.IsType<VhostUserProtocolException>(FrontendRejectsReply((raw, m) => raw.Send(2, VhostUserHeaderFlags.Reply, new VhostUserU64(1))));

    [Fact]
    public void Reply_without_the_reply_flag_is_rejected()
        => Assert.IsType<VhostUserProtocolException>(FrontendRejectsReply((raw, m) => raw.Send(1, VhostUserHeaderFlags.None, new VhostUserU64(1))));

    [Fact]
    public void Reply_of_the_wrong_size_is_rejected()
        => Assert.IsType<VhostUserProtocolException>(FrontendRejectsReply((raw, m) => raw.Send(1, VhostUserHeaderFlags.Reply, new byte[4])));

    [Fact]
    public void Reply_with_unexpected_fds_is_rejected()
    {
        int before = TestFds.Count();
        using (SafeFileHandle m = TestFds.MemFd())
        {
            Assert.IsType<VhostUserProtocolException>(FrontendRejectsReply((raw, _) => raw.Send(1, VhostUserHeaderFlags.Reply, new VhostUserU64(1), [m])));
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Backend_that_never_answers_times_out()
    {
        var e = FrontendRejectsReply((_, _) => { });
        Assert.IsType<VhostUserTimeoutException>(e);
        Assert.True(e.ShouldReconnect);
    }

    [Fact]
    public void Received_values_are_bounded()
    {
        var (a, raw) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(a);
        var peer = Task.Run(() =>
        {
            using (raw)
            {
                for (int i = 0; i < 4; i++)
                {
                    using VhostUserMessage m = raw.Receive(2000);
                    ulong value = (FrontendRequest)m.Header.Request switch
                    {
                        FrontendRequest.GetFeatures => (ulong)VhostUserVirtioFeatures.ProtocolFeatures,
                        FrontendRequest.GetProtocolFeatures => (ulong)(VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ConfigureMemorySlots),
                        FrontendRequest.GetQueueNum => 0x8001,
                        _ => 100000,
                    };
                    if (m.Header.Request != (uint)FrontendRequest.SetProtocolFeatures)
                    {
                        raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(value));
                    }
                    else
                    {
                        i--;
                    }

                    if (m.Header.Request == (uint)FrontendRequest.GetMaxMemSlots)
                    {
                        break;
                    }
                }
            }
        });
        fe.GetFeatures();
        fe.SetProtocolFeatures(fe.GetProtocolFeatures());
        Assert.Throws<VhostUserProtocolException>(() => fe.GetQueueNum());
        Assert.Equal(VhostUserLimits.MaxMemorySlots, fe.GetMaxMemorySlots());
        peer.Wait();
    }

    [Fact]
    public void Frontend_argument_checks()
    {
        var (a, b) = VhostUserConnection.CreatePair();
        using (b)
        using (var fe = new VhostUserFrontend(a))
        using (SafeFileHandle m = TestFds.MemFd())
        {
            Assert.Throws<ArgumentException>(() => fe.SetMemoryTable([]));
            Assert.Throws<ArgumentException>(() => fe.SetMemoryTable(Enumerable.Range(0, 9).Select(i => new VhostMemoryRegionInfo((ulong)i << 20, 0x1000, 0, 0, m)).ToArray()));
            Assert.Throws<ArgumentOutOfRangeException>(() => fe.SetVringNum(0, 0));
            Assert.Throws<ArgumentOutOfRangeException>(() => fe.SetVringKick(256, null));
            Assert.Throws<ArgumentException>(() => fe.SetVringAddress(0, new VringConfigData(256, 256, VringFlags.None, 0x1008, 0, 0)));
            Assert.Throws<ArgumentNullException>(() => fe.SetLogBase(0, null));
            Assert.False(b.WaitReadable(10));
        }
    }
}
