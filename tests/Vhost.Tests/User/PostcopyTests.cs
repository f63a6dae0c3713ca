using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>
/// Postcopy memory tables (spec: SET_MEM_TABLE / ADD_MEM_REG after POSTCOPY_LISTEN are answered
/// with the back-end's mapping addresses, which the front-end acknowledges with a u64 0).
/// </summary>
[Collection("FdCount")]
public sealed class PostcopyTests
{
    private const ulong BackendBase = 0x7f00_0000_0000;

    private static VhostMemoryRegionInfo Region(SafeFileHandle fd, ulong gpa, ulong size)
        => new(gpa, size, 0x5000_0000 + gpa, 0, fd);

    private static ProtocolPair ListeningPair(VhostUserProtocolFeatures extra = VhostUserProtocolFeatures.None)
    {
        var handler = new RecordingBackendHandler { PostcopyBase = r => BackendBase + r.GuestPhysicalAddress };
        var pair = new ProtocolPair(handler);
        pair.Negotiate(VhostUserProtocolFeatures.PageFault | VhostUserProtocolFeatures.ReplyAck | extra);
        pair.Frontend.PostcopyAdvise().Dispose();
        pair.Frontend.PostcopyListen();
        Assert.True(pair.Frontend.IsPostcopyListening);
        return pair;
    }

    [Fact]
    public void Set_mem_table_in_postcopy_returns_the_backend_addresses_and_is_acknowledged()
    {
        int before = TestFds.Count();
        using (SafeFileHandle a = TestFds.MemFd(0x10000), b = TestFds.MemFd(0x10000))
        using (ProtocolPair pair = ListeningPair())
        {
            pair.Frontend.SetMemoryTable([Region(a, 0, 0x10000), Region(b, 0x100000, 0x10000)]);
            Assert.Equal(2, pair.Frontend.PostcopyRegions.Count);
            Assert.Equal(BackendBase, pair.Frontend.PostcopyRegions[0].UserAddress);
            Assert.Equal(BackendBase + 0x100000, pair.Frontend.PostcopyRegions[1].UserAddress);
            Assert.Equal(0x100000UL, pair.Frontend.PostcopyRegions[1].GuestPhysicalAddress);
            Assert.True(pair.Frontend.TryTranslatePostcopyAddress(BackendBase + 0x100000 + 0x123, out ulong gpa));
            Assert.Equal(0x100123UL, gpa);
            Assert.False(pair.Frontend.TryTranslatePostcopyAddress(BackendBase + 0x10000, out _));

            // A later acked request orders us after the dispatcher's handling of the acknowledgement.
            pair.Frontend.SetVringNum(0, 64);
            string[] calls = [.. pair.Handler.Calls];
            int table = Array.FindIndex(calls, c => c.StartsWith("SetMemoryTable", StringComparison.Ordinal));
            Assert.Equal("PostcopyMemoryAcknowledged", calls[table + 1]);
            Assert.True(pair.Dispatcher.IsPostcopyListening);
            Assert.Null(pair.RunError);
            pair.Handler.Dispose();
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Add_mem_reg_in_postcopy_appends_the_backend_address()
    {
        using SafeFileHandle a = TestFds.MemFd(0x10000), b = TestFds.MemFd(0x10000);
        using ProtocolPair pair = ListeningPair(VhostUserProtocolFeatures.ConfigureMemorySlots);
        pair.Frontend.SetMemoryTable([Region(a, 0, 0x10000)]);
        pair.Frontend.AddMemoryRegion(Region(b, 0x200000, 0x10000));
        Assert.Equal(2, pair.Frontend.PostcopyRegions.Count);
        Assert.Equal(BackendBase + 0x200000, pair.Frontend.PostcopyRegions[1].UserAddress);
        pair.Frontend.RemoveMemoryRegion(Region(b, 0x200000, 0x10000));
        Assert.Single(pair.Frontend.PostcopyRegions);
        Assert.Equal(2, pair.Handler.Calls.Count(c => c == "PostcopyMemoryAcknowledged"));
        Assert.Null(pair.RunError);
    }

    [Fact]
    public void Postcopy_failure_is_a_request_failure_and_the_connection_stays_usable()
    {
        using SafeFileHandle a = TestFds.MemFd(0x10000);
        using ProtocolPair pair = ListeningPair();
        pair.Handler.FailNext = Errno.ENOMEM;
        var e = Assert.Throws<VhostUserPeerRefusedException>(() => pair.Frontend.SetMemoryTable([Region(a, 0, 0x10000)]));
        Assert.Empty(pair.Frontend.PostcopyRegions);
        pair.Frontend.SetVringNum(0, 64);
        Assert.Equal("SetVringNum 0 64", pair.Handler.Last);
    }

    [Fact]
    public void After_postcopy_end_the_memory_table_is_plain_again()
    {
        using SafeFileHandle a = TestFds.MemFd(0x10000);
        using ProtocolPair pair = ListeningPair();
        pair.Frontend.PostcopyEnd();
        Assert.False(pair.Frontend.IsPostcopyListening);
        pair.Frontend.SetMemoryTable([Region(a, 0, 0x10000)]);
        Assert.Empty(pair.Frontend.PostcopyRegions);
        Assert.DoesNotContain("PostcopyMemoryAcknowledged", pair.Handler.Calls);
        Assert.False(pair.Dispatcher.IsPostcopyListening);
    }

    [Fact]
    public void Frontend_rejects_a_postcopy_reply_for_other_regions()
    {
        using SafeFileHandle a = TestFds.MemFd(0x10000);
        (VhostUserConnection fc, VhostUserConnection raw) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(fc) { ReplyTimeout = TimeSpan.FromSeconds(5) };
        using (raw)
        {
            var peer = new Thread(() => ScriptedBackend(raw, tamper: true)) { IsBackground = true };
            peer.Start();
            fe.GetFeatures();
            fe.SetFeatures((ulong)VhostUserVirtioFeatures.ProtocolFeatures);
            fe.GetProtocolFeatures();
            fe.SetProtocolFeatures(VhostUserProtocolFeatures.PageFault);
            fe.PostcopyListen();
            var e = Assert.Throws<VhostUserProtocolException>(() => fe.SetMemoryTable([Region(a, 0x1000, 0x10000)]));
            Assert.Contains("region 0", e.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidOperationException>(() => fe.SetVringNum(0, 8));
            fc.Shutdown();
            Assert.True(peer.Join(5000));
        }
    }

    [Fact]
    public void Frontend_rejects_a_plain_acknowledgement_in_postcopy_mode()
    {
        using SafeFileHandle a = TestFds.MemFd(0x10000);
        (VhostUserConnection fc, VhostUserConnection raw) = VhostUserConnection.CreatePair();
        using var fe = new VhostUserFrontend(fc) { ReplyTimeout = TimeSpan.FromSeconds(5) };
        using (raw)
        {
            var peer = new Thread(() => ScriptedBackend(raw, tamper: false)) { IsBackground = true };
            peer.Start();
            fe.GetFeatures();
            fe.SetFeatures((ulong)VhostUserVirtioFeatures.ProtocolFeatures);
            fe.GetProtocolFeatures();
            fe.SetProtocolFeatures(VhostUserProtocolFeatures.PageFault);
            fe.PostcopyListen();
            var e = Assert.Throws<VhostUserProtocolException>(() => fe.SetMemoryTable([Region(a, 0x1000, 0x10000)]));
            Assert.Contains("acknowledged instead", e.Message, StringComparison.Ordinal);
            fc.Shutdown();
            Assert.True(peer.Join(5000));
        }
    }

    [Fact]
    public void Dispatcher_takes_one_qemu_style_acknowledgement_after_several_add_mem_reg()
    {
        var handler = new RecordingBackendHandler { PostcopyBase = r => BackendBase + r.GuestPhysicalAddress };
        (VhostUserConnection raw, VhostUserConnection bc) = VhostUserConnection.CreatePair();
        using var dispatcher = new VhostUserBackendRequestDispatcher(bc, handler);
        using SafeFileHandle a = TestFds.MemFd(0x10000), b = TestFds.MemFd(0x10000);
        using (raw)
        using (handler)
        {
            var features = VhostUserProtocolFeatures.PageFault | VhostUserProtocolFeatures.ConfigureMemorySlots;
            Request(raw, dispatcher, FrontendRequest.SetFeatures, BitConverter.GetBytes((ulong)VhostUserVirtioFeatures.ProtocolFeatures));
            Request(raw, dispatcher, FrontendRequest.SetProtocolFeatures, BitConverter.GetBytes((ulong)features));
            Request(raw, dispatcher, FrontendRequest.PostcopyListen, []);
            foreach ((SafeFileHandle fd, ulong gpa) in new[] { (a, 0UL), (b, 0x100000UL) })
            {
                var region = new VhostUserSingleMemoryRegion(new VhostUserMemoryRegion(gpa, 0x10000, 0x4000_0000, 0));
                Request(raw, dispatcher, FrontendRequest.AddMemReg, MemoryMarshal.AsBytes(new ReadOnlySpan<VhostUserSingleMemoryRegion>(in region)).ToArray(), fd);
                using VhostUserMessage reply = raw.Receive(5000);
                Assert.Equal((uint)FrontendRequest.AddMemReg, reply.Header.Request);
                Assert.True(reply.Header.IsReply);
                VhostUserSingleMemoryRegion got = reply.Read<VhostUserSingleMemoryRegion>();
                Assert.Equal(gpa, got.Region.GuestPhysicalAddress);
                Assert.Equal(BackendBase + gpa, got.Region.UserAddress);
            }

            Assert.DoesNotContain("PostcopyMemoryAcknowledged", handler.Calls);
            Request(raw, dispatcher, FrontendRequest.AddMemReg, BitConverter.GetBytes(0UL));
            Assert.Equal("PostcopyMemoryAcknowledged", handler.Last);
            Assert.Equal(1, handler.Calls.Count(c => c == "PostcopyMemoryAcknowledged"));

            // A non-zero acknowledgement is the front-end's failure.
            var region2 = new VhostUserSingleMemoryRegion(new VhostUserMemoryRegion(0x300000, 0x10000, 0x4000_0000, 0));
            Request(raw, dispatcher, FrontendRequest.AddMemReg, MemoryMarshal.AsBytes(new ReadOnlySpan<VhostUserSingleMemoryRegion>(in region2)).ToArray(), a);
            raw.Receive(5000).Dispose();
            raw.Send((uint)FrontendRequest.AddMemReg, VhostUserHeaderFlags.None, BitConverter.GetBytes(7UL));
            var e = Assert.Throws<VhostUserPeerRefusedException>(() => dispatcher.HandleNextRequest(5000));
            Assert.Equal(7UL, e.ReplyCode);
        }
    }

    private static void Request(VhostUserConnection raw, VhostUserBackendRequestDispatcher dispatcher, FrontendRequest request, byte[] body, SafeHandle? fd = null)
    {
        raw.Send((uint)request, VhostUserHeaderFlags.None, body, fd is null ? [] : [fd]);
        dispatcher.HandleNextRequest(5000);
    }

    /// <summary>A back-end that negotiates PAGEFAULT and answers SET_MEM_TABLE in postcopy mode wrongly.</summary>
    private static void ScriptedBackend(VhostUserConnection raw, bool tamper)
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
                        raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64((ulong)VhostUserProtocolFeatures.PageFault));
                        break;
                    case FrontendRequest.SetMemTable when tamper:
                        {
                            byte[] body = m.Body.ToArray();
                            BitConverter.TryWriteBytes(body.AsSpan(8), 0xdead000UL);
                            raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, body);
                            break;
                        }

                    case FrontendRequest.SetMemTable:
                        raw.Send(m.Header.Request, VhostUserHeaderFlags.Reply, new VhostUserU64(0));
                        break;
                }
            }
        }
        catch (VhostUserException)
        {
        }
    }
}
