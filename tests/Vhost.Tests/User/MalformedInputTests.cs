using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>One test per kind of malformed input: each gives a specific error and leaks no fd.</summary>
[Collection("FdCount")]
public sealed class MalformedInputTests
{
    private static byte[] Header(uint request, uint flags, uint size)
    {
        var bytes = new byte[12];
        var h = new VhostUserHeader { Request = request, Flags = (VhostUserHeaderFlags)flags, Size = size };
        MemoryMarshal.Write(bytes, in h);
        return bytes;
    }

    /// <summary>Sends raw input to a dispatcher and returns the error HandleNextRequest raised; the fd count must stay flat.</summary>
    private static T DispatcherRejects<T>(Action<VhostUserConnection> send, Action<VhostUserConnection>? afterwards = null)
        where T : VhostUserException
    {
        int before = TestFds.Count();
        VhostUserException e;
        var (raw, b) = VhostUserConnection.CreatePair();
        using (var handler = new RecordingBackendHandler())
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            send(raw);
            e = Assert.ThrowsAny<VhostUserException>(() => dispatcher.HandleNextRequest(2000));
            afterwards?.Invoke(raw);
            Assert.Empty(handler.Fds);
        }

        Assert.Equal(before, TestFds.Count());
        return Assert.IsType<T>(e);
    }

    [Fact]
    public void Unknown_request_code_gets_a_failed_ack_when_it_asks_and_serving_goes_on()
    {
        // A newer front-end's request (46, 99 and 999 are nothing yet; 45 is now
        // GET_VRING_BASE_SKIP_DRAIN): with NEED_REPLY a failed acknowledgement, without it nothing; its body
        // and fds are consumed, and the next request is served.
        int before = TestFds.Count();
        var (raw, b) = VhostUserConnection.CreatePair();
        using (var handler = new RecordingBackendHandler())
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            using SafeFileHandle m = TestFds.MemFd();
            raw.Send(46, VhostUserHeaderFlags.NeedReply, new VhostUserVringState(0, 0), [m]);
            dispatcher.HandleNextRequest(2000);
            using (VhostUserMessage reply = raw.Receive(2000))
            {
                Assert.Equal(46u, reply.Header.Request);
                Assert.Equal(1UL, reply.Read<VhostUserU64>().Value);
            }

            raw.Send(999, VhostUserHeaderFlags.None, new VhostUserU64(7));
            dispatcher.HandleNextRequest(2000);
            raw.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
            dispatcher.HandleNextRequest(2000);
            using (VhostUserMessage reply = raw.Receive(2000))
            {
                Assert.Equal((uint)FrontendRequest.GetFeatures, reply.Header.Request);
            }

            Assert.Empty(handler.Fds);
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Wrong_version_is_rejected()
        => DispatcherRejects<VhostUserProtocolException>(raw => raw.SendRaw(Header(1, 2, 0)));

    [Fact]
    public void Reply_flag_on_a_request_is_rejected()
        => DispatcherRejects<VhostUserProtocolException>(raw => raw.SendRaw(Header(1, 1 | 4, 0)));

    [Fact]
    public void Size_over_the_limit_is_rejected()
    {
        using SafeFileHandle m = TestFds.MemFd();
        DispatcherRejects<VhostUserProtocolException>(raw => raw.SendRaw(Header(5, 1, 0x1001), [m]));
    }

    // Request codes as uint: FrontendRequest is internal to Vhost, and a public test method cannot take it.
    public static TheoryData<uint, int> FixedSizes()
    {
        var data = new TheoryData<uint, int>();
        foreach (FrontendRequest r in Enum.GetValues<FrontendRequest>())
        {
            int size = r switch
            {
                FrontendRequest.GetFeatures or FrontendRequest.SetOwner or FrontendRequest.ResetOwner or FrontendRequest.GetProtocolFeatures
                    or FrontendRequest.GetQueueNum or FrontendRequest.PostcopyAdvise or FrontendRequest.PostcopyListen or FrontendRequest.PostcopyEnd
                    or FrontendRequest.ResetDevice or FrontendRequest.GetMaxMemSlots or FrontendRequest.GetStatus or FrontendRequest.CheckDeviceState
                    or FrontendRequest.GetShmemConfig or FrontendRequest.SetLogFd or FrontendRequest.SetBackendReqFd or FrontendRequest.GpuSetSocket => 0,
                FrontendRequest.SetLogBase => 16,
                FrontendRequest.SetVringAddr or FrontendRequest.AddMemReg or FrontendRequest.RemMemReg => 40,
                FrontendRequest.IotlbMsg => 32,
                FrontendRequest.GetInflightFd or FrontendRequest.SetInflightFd => 24,
                FrontendRequest.GetSharedObject => 16,
                FrontendRequest.SetMemTable or FrontendRequest.GetConfig or FrontendRequest.SetConfig or FrontendRequest.CreateCryptoSession => -1,
                _ => 8,
            };
            if (size >= 0)
            {
                data.Add((uint)r, size);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(FixedSizes))]
    public void Wrong_size_for_a_fixed_payload_is_rejected(uint request, int size)
        => DispatcherRejects<VhostUserProtocolException>(raw => raw.Send(request, VhostUserHeaderFlags.None, new byte[size + 4]));

    [Fact]
    public void Memory_table_size_mismatch_is_rejected()
    {
        using SafeFileHandle m = TestFds.MemFd();
        var payload = new byte[8 + 32 + 16];
        MemoryMarshal.Write(payload, new VhostUserMemoryHeader { RegionCount = 1 });
        MemoryMarshal.Write(payload.AsSpan(8), new VhostUserMemoryRegion(0, 0x1000, 0, 0));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetMemTable, VhostUserHeaderFlags.None, payload, [m]));
    }

    [Fact]
    public void Region_count_over_eight_is_rejected()
    {
        var memfds = Enumerable.Range(0, 8).Select(_ => TestFds.MemFd()).ToArray();
        try
        {
            var payload = new byte[8 + (9 * 32)];
            MemoryMarshal.Write(payload, new VhostUserMemoryHeader { RegionCount = 9 });
            for (int i = 0; i < 9; i++)
            {
                MemoryMarshal.Write(payload.AsSpan(8 + (i * 32)), new VhostUserMemoryRegion((ulong)i << 20, 0x1000, 0, 0));
            }

            DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetMemTable, VhostUserHeaderFlags.None, payload, memfds));
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
    public void Region_count_not_matching_fds_is_rejected()
    {
        using SafeFileHandle m = TestFds.MemFd();
        var payload = new byte[8 + (2 * 32)];
        MemoryMarshal.Write(payload, new VhostUserMemoryHeader { RegionCount = 2 });
        MemoryMarshal.Write(payload.AsSpan(8), new VhostUserMemoryRegion(0, 0x1000, 0, 0));
        MemoryMarshal.Write(payload.AsSpan(40), new VhostUserMemoryRegion(0x1000, 0x1000, 0, 0));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetMemTable, VhostUserHeaderFlags.None, payload, [m]));
    }

    [Fact]
    public void Missing_fd_where_one_is_required_is_rejected()
    {
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringKick, VhostUserHeaderFlags.None, new VhostUserU64(1)));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetLogFd, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.AddMemReg, VhostUserHeaderFlags.None, new VhostUserSingleMemoryRegion(new VhostUserMemoryRegion(0, 0x1000, 0, 0))));
    }

    [Fact]
    public void Fds_on_a_message_that_takes_none_are_rejected_and_closed()
    {
        using SafeFileHandle m = TestFds.MemFd();
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty, [m]));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringNum, VhostUserHeaderFlags.None, new VhostUserVringState(0, 8), [m]));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringKick, VhostUserHeaderFlags.None, new VhostUserU64(0x100), [m]));
    }

    [Fact]
    public void A_vring_fd_that_is_not_an_eventfd_is_rejected_by_the_dispatcher()
    {
        using SafeFileHandle m = TestFds.MemFd();
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringKick, VhostUserHeaderFlags.None, new VhostUserU64(0), [m]));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringCall, VhostUserHeaderFlags.None, new VhostUserU64(0), [m]));
    }

    [Fact]
    public void A_log_fd_that_is_not_an_eventfd_is_rejected_by_the_dispatcher()
    {
        // SET_LOG_FD's fd is signalled when a log sync is done: the dispatcher checks it is an
        // eventfd for every handler, as it does for the vring kick/call/err fds.
        using SafeFileHandle m = TestFds.MemFd();
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetLogFd, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty, [m]));
    }

    [Fact]
    public void A_ring_index_beyond_the_protocol_limit_never_reaches_the_handler()
    {
        // Handlers take int ring indices: 0x8000 and up (uint.MaxValue would be -1) are refused when the message is read.
        foreach (uint index in new[] { 0x8000u, uint.MaxValue })
        {
            VhostUserException e = DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringNum, VhostUserHeaderFlags.None, new VhostUserVringState(index, 8)));
            Assert.Contains("out of range", e.Message, StringComparison.Ordinal);
            DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.GetVringBase, VhostUserHeaderFlags.None, new VhostUserVringState(index, 0)));
        }
    }

    [Fact]
    public void Fds_arriving_with_body_bytes_are_rejected_and_closed()
    {
        using SafeFileHandle m = TestFds.MemFd();
        DispatcherRejects<VhostUserProtocolException>(
            raw =>
            {
                raw.SendRaw(Header((uint)FrontendRequest.SetFeatures, 1, 8));
                raw.SendRaw(new byte[8], [m]);
            });
    }

    [Fact]
    public void Truncated_message_then_close_is_PartialMessage()
    {
        using SafeFileHandle m = TestFds.MemFd();
        Assert.Equal(VhostUserCloseKind.Truncated, DispatcherRejects<VhostUserConnectionClosedException>(raw => { raw.SendRaw([.. Header((uint)FrontendRequest.SetFeatures, 1, 8), 1, 2], [m]); raw.Dispose(); }).Kind);
    }

    [Fact]
    public void Close_between_messages_is_Disconnected()
        => Assert.Equal(VhostUserCloseKind.Orderly, DispatcherRejects<VhostUserConnectionClosedException>(raw => raw.Dispose()).Kind);

    [Fact]
    public void Peer_closing_mid_reply_is_PartialMessage_at_the_frontend()
    {
        int before = TestFds.Count();
        var (a, raw) = VhostUserConnection.CreatePair();
        using (var fe = new VhostUserFrontend(a))
        {
            var peer = Task.Run(() =>
            {
                using (raw)
                {
                    using VhostUserMessage m = raw.Receive(2000);
                    raw.SendRaw([.. Header((uint)FrontendRequest.GetFeatures, 1 | 4, 8), 1, 2, 3]);
                }
            });
            var e = Assert.Throws<VhostUserConnectionClosedException>(() => fe.GetFeatures());
            peer.Wait();
            Assert.True(e.ShouldReconnect);
            Assert.Throws<InvalidOperationException>(() => fe.GetFeatures());
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Bad_values_are_rejected_before_the_handler()
    {
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringNum, VhostUserHeaderFlags.None, new VhostUserVringState(0, 0x8001)));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringAddr, VhostUserHeaderFlags.None, new VhostUserVringAddress { DescriptorTableAddress = 8 }));
        DispatcherRejects<VhostUserProtocolException>(raw => raw.Send((uint)FrontendRequest.SetVringAddr, VhostUserHeaderFlags.None, new VhostUserVringAddress { Flags = (VhostUserVringAddressFlags)2 }));
    }
}
