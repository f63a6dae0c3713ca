using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Testing;
using VhostUserBackend.Tests.Daemon;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Iommu;

/// <summary>
/// The daemon with VIRTIO_F_ACCESS_PLATFORM against our front-end acting as QEMU does: ring and
/// buffer addresses are IOVAs, the front-end answers each IOTLB miss (back-end channel) with a
/// page-sized update on the main connection, and a read-only mapping of a device-writable buffer
/// fails the request.
/// </summary>
public sealed class DaemonIotlbTests
{
    private const ulong IovaOffset = 0x7_0000_0000;

    [Fact]
    public void A_ring_of_IOVAs_starts_after_the_misses_are_answered_and_requests_complete_through_page_entries()
    {
        using var rig = new DaemonRig(new CopyDevice(packed: false));
        using VhostUserFrontend f = VhostUserFrontend.Connect(rig.SocketPath, TimeSpan.FromSeconds(5));
        ulong offered = f.GetFeatures();
        Assert.NotEqual(0UL, offered & (ulong)VirtioFeatures.AccessPlatform);
        f.SetProtocolFeatures(f.GetProtocolFeatures() & (VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.BackendRequest));
        f.SetOwner();
        f.SetFeatures((ulong)(VirtioFeatures.Version1 | VirtioFeatures.AccessPlatform) | (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
        var answerer = new MissAnswerer(f, rig);
        f.SetBackendRequestFd(answerer);
        f.SetMemoryTable(rig.MemoryRegions());

        var driver = new SplitQueueDriver(rig.Ram, 64);
        using var kick = new EventFd();
        using var call = new EventFd(EventFdFlags.NonBlocking);
        using var error = new EventFd(EventFdFlags.NonBlocking);
        f.SetVringNum(0, driver.Size);
        f.SetVringBase(0, 0);
        f.SetVringAddress(0, new VringConfigData(driver.Size, driver.Size, VringFlags.None, IovaOffset + driver.DescriptorTableAddress, IovaOffset + driver.UsedRingAddress, IovaOffset + driver.AvailRingAddress));
        f.SetVringKick(0, kick);
        f.SetVringCall(0, call);
        f.SetVringError(0, error);
        f.SetVringEnable(0, true);

        // A request whose buffers cross page boundaries: each page is its own IOTLB entry.
        ulong input = rig.Ram.Allocate(0x3000, 0x1000) + 0xf00;
        ulong output = rig.Ram.Allocate(0x3000, 0x1000) + 0x800;
        byte[] payload = [.. Enumerable.Range(0, 0x1400).Select(i => (byte)(i * 7))];
        rig.Ram.Write(input, payload);
        driver.AddBuffers([new VirtqBuffer(IovaOffset + input, (uint)payload.Length, false), new VirtqBuffer(IovaOffset + output, 0x1800, true)]);
        driver.Publish();
        kick.Signal();
        Assert.True(WaitUsed(driver, out uint length), "the request did not complete through the IOTLB");
        Assert.Equal((uint)payload.Length, length);
        Assert.Equal(payload, rig.Ram.GetSpan(output, payload.Length).ToArray());
        Assert.True(answerer.Misses >= 5, $"{answerer.Misses} misses");

        // The output page mapped read-only: the device cannot write there; the request fails (error eventfd), nothing is written.
        answerer.ReadOnly = output & ~0xfffUL;
        f.SendIotlbMessage(new VhostUserIotlbMessage { Iova = IovaOffset + (output & ~0xfffUL), Size = 0x1000, Type = VhostIotlbType.Invalidate });
        rig.Ram.GetSpan(output, 16).Clear();
        driver.AddBuffers([new VirtqBuffer(IovaOffset + input, 16, false), new VirtqBuffer(IovaOffset + output, 16, true)]);
        driver.Publish();
        kick.Signal();
        Assert.True(UnixSocket.WaitReady(error, Interop.POLLIN, 5000), "no ring error for a write into a read-only IOVA");
        Assert.Equal(new byte[16], rig.Ram.GetSpan(output, 16).ToArray());
    }

    private static bool WaitUsed(SplitQueueDriver driver, out uint length)
    {
        long deadline = Environment.TickCount64 + 10_000;
        while (Environment.TickCount64 < deadline)
        {
            if (driver.TryGetUsed(out _, out length))
            {
                return true;
            }

            Thread.Sleep(5);
        }

        length = 0;
        return false;
    }

    /// <summary>Answers every miss as QEMU does: one page, from another thread, on the main connection.</summary>
    private sealed class MissAnswerer(VhostUserFrontend frontend, DaemonRig rig) : IVhostUserFrontendRequestHandler
    {
        private int _misses;

        public int Misses => Volatile.Read(ref _misses);

        public ulong ReadOnly { get; set; } = ulong.MaxValue;

        public void IotlbMessage(in VhostUserIotlbMessage message)
        {
            Assert.Equal(VhostIotlbType.Miss, message.Type);
            Interlocked.Increment(ref _misses);
            ulong page = (message.Iova - IovaOffset) & ~0xfffUL;
            VhostIotlbAccess access = page == ReadOnly ? VhostIotlbAccess.ReadOnly : VhostIotlbAccess.ReadWrite;
            ThreadPool.QueueUserWorkItem(_ => frontend.SendIotlbMessage(new VhostUserIotlbMessage
            {
                Iova = IovaOffset + page,
                Size = 0x1000,
                UserAddress = rig.UserAddress(page),
                Permission = access,
                Type = VhostIotlbType.Update,
            }));
        }
    }
}
