using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Tests.User;

/// <summary>Every front-end message, from <see cref="VhostUserFrontend"/> through the dispatcher to a recording handler, and back.</summary>
[Collection("FdCount")]
public sealed class FrontendBackendPairTests
{
    private static void AssertSameEventFd(EventFd sent, SafeFileHandle received)
    {
        Assert.Equal(TestFds.Identity(sent), TestFds.Identity(received));
        Span<byte> value = stackalloc byte[8];
        MemoryMarshal.Write(value, 7UL);
        Fd.Write(received, value);
        Assert.True(sent.TryRead(out ulong got));
        Assert.Equal(7UL, got);
    }

    [Fact]
    public void Negotiation_reaches_the_handler_with_exact_values()
    {
        using var pair = new ProtocolPair();
        VhostUserFrontend fe = pair.Frontend;
        Assert.Equal(RecordingBackendHandler.OfferedFeatures, fe.GetFeatures());
        fe.SetFeatures(0x4000_0003);
        VhostUserProtocolFeatures offered = fe.GetProtocolFeatures();
        Assert.Equal(pair.Handler.Offered | VhostUserProtocolFeatures.ReplyAck, offered);
        Assert.Contains("SetFeatures 0x40000003", pair.Handler.Calls);
        fe.SetProtocolFeatures(offered);
        fe.SetOwner();
        Assert.Equal("SetOwner", pair.Handler.Last);
        Assert.Equal($"SetProtocolFeatures 0x{(ulong)offered:x}", pair.Handler.Calls[^2]);
        Assert.Equal(offered, pair.Dispatcher.AckedProtocolFeatures);
        fe.ResetOwner();
        Assert.Equal("ResetOwner", pair.Handler.Last);
    }

    [Fact]
    public void Memory_table_and_regions_carry_their_fds()
    {
        int before = TestFds.Count();
        using (var pair = new ProtocolPair())
        using (SafeFileHandle m1 = TestFds.MemFd(0x10000))
        using (SafeFileHandle m2 = TestFds.MemFd(0x10000))
        {
            pair.Negotiate();
            VhostUserFrontend fe = pair.Frontend;
            fe.SetMemoryTable([new(0, 0x10000, 0x7f0000000000, 0, m1), new(0x100000, 0x8000, 0x7f0000100000, 0x1000, m2)]);
            Assert.Equal("SetMemoryTable 0/10000/7f0000000000/0,100000/8000/7f0000100000/1000", pair.Handler.Last);
            Assert.Equal(TestFds.Identity(m1), TestFds.Identity(pair.Handler.Fds[0]));
            Assert.Equal(TestFds.Identity(m2), TestFds.Identity(pair.Handler.Fds[1]));

            Assert.Equal(509, fe.GetMaxMemorySlots());
            fe.AddMemoryRegion(new(0x200000, 0x1000, 0x7f0000200000, 0, m1));
            Assert.Equal("AddMemoryRegion 200000/1000", pair.Handler.Last);
            Assert.Equal(TestFds.Identity(m1), TestFds.Identity(pair.Handler.Fds[2]));
            fe.RemoveMemoryRegion(new(0x200000, 0x1000, 0x7f0000200000, 0, m1));
            Assert.Equal("RemoveMemoryRegion 200000/1000", pair.Handler.Last);

            // Ten regions: eight in SET_MEM_TABLE, two through ADD_MEM_REG.
            var many = Enumerable.Range(0, 10).Select(i => new VhostMemoryRegionInfo((ulong)i * 0x100000, 0x1000, 0x7f0000000000 + ((ulong)i * 0x100000), 0, m1)).ToArray();
            fe.SetMemoryTable(many);
            Assert.StartsWith("SetMemoryTable ", pair.Handler.Calls[^3]);
            Assert.Equal(8, pair.Handler.Calls[^3].Split(',').Length);
            Assert.Equal("AddMemoryRegion 800000/1000", pair.Handler.Calls[^2]);
            Assert.Equal("AddMemoryRegion 900000/1000", pair.Handler.Last);
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Vring_setup_messages_reach_the_handler()
    {
        int before = TestFds.Count();
        using (var pair = new ProtocolPair())
        using (var kick = new EventFd(EventFdFlags.NonBlocking))
        using (var call = new EventFd(EventFdFlags.NonBlocking))
        using (var err = new EventFd(EventFdFlags.NonBlocking))
        {
            pair.Negotiate();
            VhostUserFrontend fe = pair.Frontend;
            fe.SetVringNum(1, 256);
            Assert.Equal("SetVringNum 1 256", pair.Handler.Last);
            fe.SetVringAddress(1, new VringConfigData(256, 256, VringFlags.Log, 0x1000, 0x3000, 0x2000, 0x9000));
            Assert.Equal("SetVringAddress 1 Log 1000 3000 2000 9000", pair.Handler.Last);
            fe.SetVringBase(1, 17);
            Assert.Equal("SetVringBase 1 17", pair.Handler.Last);
            Assert.Equal(0x1235u, fe.GetVringBase(1));
            Assert.Equal("GetVringBase 1", pair.Handler.Last);
            Assert.Equal(0x5679u, fe.GetVringBaseSkipDrain(1));
            Assert.Equal("GetVringBaseSkipDrain 1", pair.Handler.Last);
            fe.SetVringKick(1, kick);
            Assert.Equal("SetVringKick 1 1", pair.Handler.Last);
            AssertSameEventFd(kick, pair.Handler.Fds[^1]);
            fe.SetVringCall(1, call);
            Assert.Equal("SetVringCall 1 1", pair.Handler.Last);
            AssertSameEventFd(call, pair.Handler.Fds[^1]);
            fe.SetVringError(1, err);
            Assert.Equal("SetVringError 1 1", pair.Handler.Last);
            AssertSameEventFd(err, pair.Handler.Fds[^1]);
            fe.SetVringKick(2, null);
            Assert.Equal("SetVringKick 2 0", pair.Handler.Last);
            fe.SetVringCall(2, null);
            Assert.Equal("SetVringCall 2 0", pair.Handler.Last);
            fe.SetVringError(2, null);
            Assert.Equal("SetVringError 2 0", pair.Handler.Last);
            fe.SetVringEnable(1, true);
            Assert.Equal("SetVringEnable 1 True", pair.Handler.Last);
            fe.SetVringEndianness(0, VringEndianness.Big);
            Assert.Equal("SetVringEndian 0 Big", pair.Handler.Last);
            fe.VringKick(3);
            Assert.Equal("VringKick 3", pair.Handler.Last);
            Assert.Equal(4, fe.GetQueueNum());
        }

        Assert.True(before == TestFds.Count(), TestFds.Describe());
    }

    [Fact]
    public void Device_messages_reach_the_handler_and_replies_come_back()
    {
        int before = TestFds.Count();
        using (var pair = new ProtocolPair())
        using (SafeFileHandle memfd = TestFds.MemFd())
        using (var logFd = new EventFd())
        {
            pair.Negotiate();
            VhostUserFrontend fe = pair.Frontend;
            fe.SetLogBase(0, new VhostDirtyLogRegion(0x2000, 0x1000, memfd));
            Assert.Equal("SetLogBase 2000/1000", pair.Handler.Last);
            Assert.Equal(TestFds.Identity(memfd), TestFds.Identity(pair.Handler.Fds[^1]));
            fe.SetLogFd(logFd);
            Assert.Equal("SetLogFd", pair.Handler.Last);
            AssertSameEventFd(logFd, pair.Handler.Fds[^1]);
            fe.SendRarp([1, 2, 3, 4, 5, 6]);
            Assert.Equal("SendRarp 010203040506", pair.Handler.Last);
            fe.NetSetMtu(9000);
            Assert.Equal("NetSetMtu 9000", pair.Handler.Last);
            fe.SendIotlbMessage(new VhostUserIotlbMessage { Type = VhostIotlbType.Update, Iova = 0x1000, Size = 0x2000, UserAddress = 0x7f00, Permission = VhostIotlbAccess.ReadWrite });
            Assert.Equal("IotlbMessage Update 1000 2000 7f00 ReadWrite", pair.Handler.Last);
            Assert.Equal(new byte[] { 4, 5, 6, 7 }, fe.GetConfig(4, 4, VhostUserConfigFlags.None));
            Assert.Equal("GetConfig 4 4 None", pair.Handler.Last);
            fe.SetConfig(8, VhostUserConfigFlags.LiveMigration, [0xAA, 0xBB]);
            Assert.Equal("SetConfig 8 LiveMigration AABB", pair.Handler.Last);
            Assert.Equal(new byte[] { 1, 2, 0x42 }, fe.CreateCryptoSession([1, 2]));
            fe.CloseCryptoSession(77);
            Assert.Equal("CloseCryptoSession 77", pair.Handler.Last);
            using (SafeFileHandle ufd = fe.PostcopyAdvise())
            {
                Assert.Equal("PostcopyAdvise", pair.Handler.Last);
                Assert.Equal(8192, Fd.Stat(ufd).Size);
            }

            fe.PostcopyListen();
            Assert.Equal("PostcopyListen", pair.Handler.Last);
            fe.PostcopyEnd();
            Assert.Equal("PostcopyEnd", pair.Handler.Last);
            using (SafeFileHandle inflightFd = fe.GetInflightFd(2, 256, out VhostUserInflight inflight))
            {
                Assert.Equal("GetInflightFd 2 256", pair.Handler.Last);
                Assert.Equal((ulong)(2 * (16 + (16 * 256))), inflight.MmapSize);
                fe.SetInflightFd(inflight, inflightFd);
                Assert.Equal($"SetInflightFd {inflight.MmapSize:x} 2 256", pair.Handler.Last);
                Assert.Equal(TestFds.Identity(inflightFd), TestFds.Identity(pair.Handler.Fds[^1]));
            }

            fe.GpuSetSocket(memfd);
            Assert.Equal("GpuSetSocket", pair.Handler.Last);
            fe.ResetDevice();
            Assert.Equal("ResetDevice", pair.Handler.Last);
            fe.SetStatus(0x7);
            Assert.Equal("SetStatus 7", pair.Handler.Last);
            Assert.Equal(0xF, fe.GetStatus());
            var uuid = Guid.NewGuid();
            using (SafeFileHandle dmabuf = fe.GetSharedObject(uuid))
            {
                Assert.Equal($"GetSharedObject {uuid}", pair.Handler.Last);
            }

            Assert.Null(fe.SetDeviceStateFd(VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped, memfd));
            Assert.Equal("SetDeviceStateFd Save Stopped", pair.Handler.Last);
            Assert.Equal(TestFds.Identity(memfd), TestFds.Identity(pair.Handler.Fds[^1]));
            pair.Handler.ReturnFd = TestFds.MemFd(0x3000, "state");
            using (SafeFileHandle? other = fe.SetDeviceStateFd(VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, memfd))
            {
                Assert.NotNull(other);
                Assert.Equal(TestFds.Identity(pair.Handler.ReturnFd), TestFds.Identity(other));
            }

            fe.CheckDeviceState();
            Assert.Equal("CheckDeviceState", pair.Handler.Last);
            VhostUserShmemConfig shmem = fe.GetShmemConfig();
            Assert.Equal(2u, shmem.RegionCount);
            Assert.Equal(0x200000UL, shmem.MemorySizes[7]);
        }

        Assert.Equal(before, TestFds.Count());
    }

    [Fact]
    public void Every_frontend_request_code_is_exercised()
    {
        // Guards the tests above: a new request code must get a pair test.
        var covered = new HashSet<string>
        {
            "GetFeatures", "SetFeatures", "SetOwner", "ResetOwner", "SetMemTable", "SetLogBase", "SetLogFd", "SetVringNum",
            "SetVringAddr", "SetVringBase", "GetVringBase", "SetVringKick", "SetVringCall", "SetVringErr", "GetProtocolFeatures",
            "SetProtocolFeatures", "GetQueueNum", "SetVringEnable", "SendRarp", "NetSetMtu", "SetBackendReqFd", "IotlbMsg",
            "SetVringEndian", "GetConfig", "SetConfig", "CreateCryptoSession", "CloseCryptoSession", "PostcopyAdvise",
            "PostcopyListen", "PostcopyEnd", "GetInflightFd", "SetInflightFd", "GpuSetSocket", "ResetDevice", "VringKick",
            "GetMaxMemSlots", "AddMemReg", "RemMemReg", "SetStatus", "GetStatus", "GetSharedObject", "SetDeviceStateFd",
            "CheckDeviceState", "GetShmemConfig", "GetVringBaseSkipDrain",
        };
        Assert.Equal(covered.Order(), Enum.GetNames<FrontendRequest>().Order());
    }
}
