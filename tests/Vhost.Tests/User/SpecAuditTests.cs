using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.Tests.User;

/// <summary>Payload validation and reply shapes checked against the spec text (one test per fix of the audit).</summary>
[Collection("FdCount")]
public sealed class SpecAuditTests
{
    /// <summary>A dispatcher driven by hand: sends <paramref name="request"/> after the given SET_FEATURES and returns what HandleNextRequest did.</summary>
    private static VhostUserException? Dispatch(FrontendRequest request, byte[] body, ulong features = (ulong)VhostUserVirtioFeatures.ProtocolFeatures, VhostUserProtocolFeatures protocol = VhostUserProtocolFeatures.None, RecordingBackendHandler? handler = null, Action<VhostUserConnection>? afterwards = null)
    {
        int before = TestFds.Count();
        VhostUserException? error = null;
        handler ??= new RecordingBackendHandler();
        (VhostUserConnection raw, VhostUserConnection b) = VhostUserConnection.CreatePair();
        using (handler)
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            raw.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.None, new VhostUserU64(features));
            dispatcher.HandleNextRequest(2000);
            if (protocol != VhostUserProtocolFeatures.None)
            {
                raw.Send((uint)FrontendRequest.SetProtocolFeatures, VhostUserHeaderFlags.None, new VhostUserU64((ulong)protocol));
                dispatcher.HandleNextRequest(2000);
            }

            raw.Send((uint)request, VhostUserHeaderFlags.None, body);
            try
            {
                dispatcher.HandleNextRequest(2000);
            }
            catch (VhostUserException e)
            {
                error = e;
            }

            afterwards?.Invoke(raw);
        }

        Assert.Equal(before, TestFds.Count());
        return error;
    }

    private static byte[] State(uint index, uint num)
    {
        var state = new VhostUserVringState(index, num);
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(new ReadOnlySpan<VhostUserVringState>(in state)).ToArray();
    }

    [Fact]
    public void Get_vring_base_tolerates_garbage_in_the_unused_num()
    {
        // DPDK's virtio-user front-end sends whatever its stack held there (seen: 42845, 44000);
        // refusing it broke every DPDK front-end's clean stop.
        Assert.Null(Dispatch(FrontendRequest.GetVringBase, State(0, 42845), afterwards: raw => Assert.Equal(0x1234u, raw.Receive(2000).Read<VhostUserVringState>().Num)));
        Assert.Null(Dispatch(FrontendRequest.GetVringBase, State(0, 0), afterwards: raw => Assert.Equal(0x1234u, raw.Receive(2000).Read<VhostUserVringState>().Num)));
    }

    [Fact]
    public void Vring_kick_fd_messages_tolerate_reserved_bits()
    {
        var handler = new RecordingBackendHandler();
        Assert.Null(Dispatch(FrontendRequest.SetVringCall, BitConverter.GetBytes(0x200UL | 0x100 | 1), handler: handler, afterwards: _ => Assert.StartsWith("SetVringCall 1", handler.Last, StringComparison.Ordinal)));
    }

    [Fact]
    public void Vring_kick_tolerates_a_non_zero_reserved_num()
    {
        var h5 = new RecordingBackendHandler();
        Assert.Null(Dispatch(FrontendRequest.VringKick, State(1, 5), protocol: VhostUserProtocolFeatures.InbandNotifications, handler: h5, afterwards: _ => Assert.Equal("VringKick 1", h5.Last)));
        var handler = new RecordingBackendHandler();
        Assert.Null(Dispatch(FrontendRequest.VringKick, State(1, 0), protocol: VhostUserProtocolFeatures.InbandNotifications, handler: handler, afterwards: _ => Assert.Equal("VringKick 1", handler.Last)));
    }

    [Fact]
    public void Set_vring_enable_accepts_only_zero_or_one()
    {
        Assert.IsType<VhostUserProtocolException>(Dispatch(FrontendRequest.SetVringEnable, State(0, 2)));
        Assert.Null(Dispatch(FrontendRequest.SetVringEnable, State(0, 1)));
    }

    [Fact]
    public void Set_vring_base_is_16_bits_on_split_rings_and_32_on_packed_rings()
    {
        const uint packedBase = 0x8005_8003; // used wrap, used idx 5, avail wrap, avail idx 3
        VhostUserException? e = Dispatch(FrontendRequest.SetVringBase, State(0, packedBase));
        Assert.IsType<VhostUserProtocolException>(e);
        Assert.Contains("split ring", e!.Message, StringComparison.Ordinal);
        var handler = new RecordingBackendHandler();
        ulong packed = (ulong)VhostUserVirtioFeatures.ProtocolFeatures | (ulong)VirtioFeatures.RingPacked;
        Assert.Null(Dispatch(FrontendRequest.SetVringBase, State(0, packedBase), features: packed, handler: handler, afterwards: _ => Assert.Equal($"SetVringBase 0 {packedBase}", handler.Last)));
    }

    [Fact]
    public void Packed_ring_base_round_trips_all_32_bits_through_the_frontend()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate(VhostUserProtocolFeatures.ReplyAck);
        pair.Frontend.SetFeatures((ulong)VhostUserVirtioFeatures.ProtocolFeatures | (ulong)VirtioFeatures.RingPacked);
        pair.Frontend.SetVringBase(1, 0x8005_8003);
        Assert.Equal($"SetVringBase 1 {0x8005_8003u}", pair.Handler.Last);
        Assert.Equal(0x1235u, pair.Frontend.GetVringBase(1));
    }

    [Fact]
    public void Set_log_base_reply_may_be_empty_as_dpdk_sends_it()
    {
        using SafeFileHandle log = TestFds.MemFd(0x1000);
        (VhostUserConnection fc, VhostUserConnection raw) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(fc) { ReplyTimeout = TimeSpan.FromSeconds(5) };
        using (raw)
        {
            var peer = new Thread(() =>
            {
                try
                {
                    while (true)
                    {
                        using VhostUserMessage m = raw.Receive();
                        switch ((FrontendRequest)m.Header.Request)
                        {
                            case FrontendRequest.GetFeatures:
                                raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64((ulong)VhostUserVirtioFeatures.ProtocolFeatures));
                                break;
                            case FrontendRequest.GetProtocolFeatures:
                                raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64((ulong)VhostUserProtocolFeatures.LogShmFd));
                                break;
                            case FrontendRequest.SetLogBase:
                                raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, ReadOnlySpan<byte>.Empty);
                                break;
                        }
                    }
                }
                catch (VhostUserException)
                {
                }
            })
            { IsBackground = true };
            peer.Start();
            fe.GetFeatures();
            fe.SetFeatures((ulong)VhostUserVirtioFeatures.ProtocolFeatures);
            fe.GetProtocolFeatures();
            fe.SetProtocolFeatures(VhostUserProtocolFeatures.LogShmFd);
            fe.SetLogBase(0, new VhostDirtyLogRegion(0x1000, 0, log));
            fe.SetLogBase(0, new VhostDirtyLogRegion(0x1000, 0, log));
            fc.Shutdown();
            Assert.True(peer.Join(5000));
        }
    }

    [Fact]
    public void Get_inflight_fd_with_no_region_is_a_request_failure_without_an_fd()
    {
        var handler = new RecordingBackendHandler { NoInflightRegion = true };
        using var pair = new ProtocolPair(handler);
        pair.Negotiate(VhostUserProtocolFeatures.InflightShmFd | VhostUserProtocolFeatures.ReplyAck);
        var e = Assert.Throws<VhostUserPeerRefusedException>(() => pair.Frontend.GetInflightFd(2, 256, out _));
        pair.Frontend.SetVringNum(0, 64);
        Assert.Equal("SetVringNum 0 64", pair.Handler.Last);
        Assert.Null(pair.RunError);
    }

    [Fact]
    public void Get_inflight_fd_handler_failure_is_answered_instead_of_left_hanging()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate(VhostUserProtocolFeatures.InflightShmFd | VhostUserProtocolFeatures.ReplyAck);
        pair.Handler.FailNext = Errno.ENOMEM;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<VhostUserPeerRefusedException>(() => pair.Frontend.GetInflightFd(2, 256, out _));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), "the front-end waited for a reply that never came");
        pair.Frontend.SetVringNum(0, 64);
        Assert.Equal("SetVringNum 0 64", pair.Handler.Last);
    }

    [Fact]
    public void Postcopy_advise_reply_is_the_userfaultfd_without_a_payload()
    {
        Assert.Null(Dispatch(FrontendRequest.PostcopyAdvise, [], protocol: VhostUserProtocolFeatures.PageFault, afterwards: raw =>
        {
            using VhostUserMessage reply = raw.Receive(2000);
            Assert.True(reply.Header.IsReply);
            Assert.Equal(0, reply.Body.Length);
            Assert.Equal(1, reply.Fds.Count);
        }));
    }

    [Fact]
    public void Postcopy_advise_failure_is_answered_without_an_fd_and_keeps_the_connection()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate(VhostUserProtocolFeatures.PageFault | VhostUserProtocolFeatures.ReplyAck);
        pair.Handler.FailNext = Errno.EPERM;
        var e = Assert.Throws<VhostUserPeerRefusedException>(() => pair.Frontend.PostcopyAdvise());
        pair.Frontend.SetVringNum(0, 64);
        Assert.Equal("SetVringNum 0 64", pair.Handler.Last);
    }

    [Fact]
    public void Shmem_config_accepts_both_readings_of_the_region_count()
    {
        // Array-length reading: shmid 0 unused, shmid 1 in use, count 2 (vhost-device style).
        var dense = new VhostUserShmemConfig { RegionCount = 2 };
        dense.MemorySizes[1] = 0x200000;
        Assert.True(dense.IsValid());

        // Non-zero reading: one region at shmid 3, count 1.
        var sparse = new VhostUserShmemConfig { RegionCount = 1 };
        sparse.MemorySizes[3] = 0x10000;
        Assert.True(sparse.IsValid());
        sparse.RegionCount = 3;
        Assert.False(sparse.IsValid());

        var handler = new RecordingBackendHandler { ShmemConfig = dense };
        using var pair = new ProtocolPair(handler);
        pair.Negotiate(VhostUserProtocolFeatures.Shmem | VhostUserProtocolFeatures.ReplyAck);
        VhostUserShmemConfig got = pair.Frontend.GetShmemConfig();
        Assert.Equal(2u, got.RegionCount);
        Assert.Equal(0x200000UL, got.MemorySizes[1]);
    }

    [Fact]
    public void Shmem_region_sizes_must_be_page_multiples()
    {
        var config = new VhostUserShmemConfig { RegionCount = 1 };
        config.MemorySizes[0] = 0x1001;
        Assert.True(config.IsValid());
        Assert.False(config.HasPageSizedRegions(Environment.SystemPageSize));
        config.MemorySizes[0] = (ulong)Environment.SystemPageSize * 3;
        Assert.True(config.HasPageSizedRegions(Environment.SystemPageSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => config.HasPageSizedRegions(0));

        config.MemorySizes[0] = 0x1001;
        var handler = new RecordingBackendHandler { ShmemConfig = config };
        VhostUserException? e = Dispatch(FrontendRequest.GetShmemConfig, [], protocol: VhostUserProtocolFeatures.Shmem, handler: handler);
        Assert.IsType<VhostUserRequestHandlerException>(e);
        Assert.Contains("page size", e!.Message, StringComparison.Ordinal);
    }
}
