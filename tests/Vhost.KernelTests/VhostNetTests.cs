using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Vhost.Kernel;
using Vhost.Virtio;
using Vhost.Vmm;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.KernelTests;

/// <summary>The real <c>/dev/vhost-net</c>: ioctls, and frames moved between the rings and a tap (rings set up by <see cref="VmmVhostDevice"/>).</summary>
[Collection(KernelDeviceCollection.Name)]
public sealed class VhostNetTests
{
    private const ulong VersionOne = (ulong)VirtioFeatures.Version1;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    [Fact]
    public void Owner_features_and_backend_features()
    {
        KernelDevice.Require(KernelDevice.Net);
        using var net = VhostNet.Open();
        net.SetOwner();
        Assert.Equal(Errno.EBUSY, Assert.Throws<VhostException>(() => net.SetOwner()).Errno);
        ulong features = net.GetFeatures();
        Assert.NotEqual(0UL, features & VersionOne);
        net.SetFeatures(VersionOne);
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<VhostException>(() => net.SetFeatures(1UL << 63)).Errno);

        VhostBackendFeatures backend = net.GetBackendFeatures();
        Assert.True(backend.HasFlag(VhostBackendFeatures.IotlbMessageV2), $"backend features {backend}");
        net.SetBackendFeatures(VhostBackendFeatures.IotlbMessageV2);
        Assert.Equal(VhostBackendFeatures.IotlbMessageV2, net.AckedBackendFeatures);
        Assert.Equal(Errno.EOPNOTSUPP, Assert.Throws<VhostException>(() => net.SetBackendFeatures(VhostBackendFeatures.Suspend)).Errno);
        net.ResetOwner();
        net.SetOwner();
    }

    [Fact]
    public void Vring_num_base_busy_loop_and_queue_bounds()
    {
        KernelDevice.Require(KernelDevice.Net);
        using var net = VhostNet.Open();
        net.SetOwner();
        net.SetVringNum(0, 256);
        net.SetVringBase(0, 7);
        Assert.Equal(7u, net.GetVringBase(0));
        net.SetVringBusyLoopTimeout(1, 50);
        Assert.Equal(50u, net.GetVringBusyLoopTimeout(1));
        Assert.Equal(Errno.ENOBUFS, Assert.Throws<VhostException>(() => net.SetVringNum(2, 16)).Errno);
    }

    [Fact]
    public void Worker_ioctls_are_refused_with_a_clear_error_or_work()
    {
        KernelDevice.Require(KernelDevice.Net);
        using var net = VhostNet.Open();
        net.SetOwner();
        // vhost-net in Linux 6.12 does not implement the worker ioctls (only vhost-scsi does).
        VhostException e = Assert.Throws<VhostException>(() => net.CreateWorker());
        Assert.Equal(Errno.ENOTTY, e.Errno);
        Assert.Contains("not supported by this kernel", e.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.ENOTTY, Assert.Throws<VhostException>(() => net.GetVringWorker(0)).Errno);
    }

    [Fact]
    public void Vring_endianness_round_trips_or_is_reported_unsupported()
    {
        KernelDevice.Require(KernelDevice.Net);
        using var net = VhostNet.Open();
        net.SetOwner();
        try
        {
            net.SetVringEndianness(0, VringEndianness.Big);
        }
        catch (VhostException e) when (e.Errno == Errno.ENOTTY)
        {
            Assert.Contains("CONFIG_VHOST_CROSS_ENDIAN_LEGACY", e.Message, StringComparison.Ordinal);
            return;
        }

        Assert.Equal(VringEndianness.Big, net.GetVringEndianness(0));
    }

    [Fact]
    public void Rings_outside_the_memory_table_never_reach_the_kernel()
    {
        KernelDevice.Require(KernelDevice.Net);
        using GuestRam ram = GuestRam.Create(1 << 20);
        using var net = VhostNet.Open();
        net.SetOwner();
        net.SetMemoryTable(VmmVhostDevice.MemoryTableOf(ram));
        net.SetVringNum(0, 16);
        Assert.Throws<ArgumentException>(() => net.SetVringAddress(0, new VringConfigData(256, 16, VringFlags.None, 1 << 20, 0x2000, 0x1000)));
        net.SetVringAddress(0, new VringConfigData(256, 16, VringFlags.None, 0x0, 0x2000, 0x1000));
    }

    [Fact]
    public void Set_backend_with_a_non_tap_fd_is_refused()
    {
        KernelDevice.Require(KernelDevice.Net);
        using GuestRam ram = GuestRam.Create(1 << 20);
        using var net = VhostNet.Open();
        using var device = new VmmVhostDevice(net, ram);
        device.SetOwner();
        device.SetFeatures(0, required: VersionOne);
        device.SetMemoryTable();
        device.AddQueue(16);
        using var notATap = new EventFd();
        Assert.Equal(Errno.ENOTSOCK, Assert.Throws<VhostException>(() => net.SetBackend(0, notATap)).Errno);
        net.SetBackend(0, null);
    }

    [Fact]
    public void Rx_ring_receives_the_arp_the_guest_kernel_sends_out_of_the_tap()
    {
        KernelDevice.Require(KernelDevice.Net);
        using var env = new NetSetup("vtrx0");
        var buffers = new Dictionary<ushort, ulong>();
        for (int i = 0; i < 8; i++)
        {
            ulong buffer = env.Ram.Allocate(2048, 16);
            buffers[env.Rx.Submit([new VirtqBuffer(buffer, 2048, true)])] = buffer;
        }

        env.Tap.Up(IPAddress.Parse("10.99.0.1"), IPAddress.Parse("255.255.255.0"));
        using (var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            udp.SendTo([1], new IPEndPoint(IPAddress.Parse("10.99.0.2"), 9));
        }

        var completions = new List<VmmCompletion> { env.Rx.WaitForCompletion(Wait) };
        Assert.True(env.Rx.WaitForCalls(1, Wait), $"RX used idx {env.Rx.Driver.DeviceUsedIndex}, no call");
        while (env.Rx.TryGetCompletion(out VmmCompletion more))
        {
            completions.Add(more);
        }

        var seen = new List<string>();
        bool arp = false;
        foreach ((ushort head, uint length) in completions)
        {
            ReadOnlySpan<byte> frame = env.Ram.GetSpan(buffers[head] + Tap.VnetHeaderSize, (int)length - Tap.VnetHeaderSize);
            ushort ethertype = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
            seen.Add($"len={length} ethertype={ethertype:x4}");
            // ARP request (op 1) asking for 10.99.0.2, sent by 10.99.0.1.
            arp |= ethertype == 0x0806 && BinaryPrimitives.ReadUInt16BigEndian(frame[20..]) == 1
                && frame.Slice(28, 4).SequenceEqual(new byte[] { 10, 99, 0, 1 }) && frame.Slice(38, 4).SequenceEqual(new byte[] { 10, 99, 0, 2 });
        }

        Assert.True(arp, "no ARP request for 10.99.0.2 in the RX ring: " + string.Join("; ", seen));
    }

    [Fact]
    public void Tx_ring_frame_appears_on_the_tap()
    {
        KernelDevice.Require(KernelDevice.Net);
        using var env = new NetSetup("vttx0");
        env.Tap.Up(IPAddress.Parse("10.98.0.1"), IPAddress.Parse("255.255.255.0"));
        long before = env.Tap.ReadStatistic("rx_packets");

        // A broadcast ARP request from 10.98.0.2 (52:54:00:12:34:56) after a zeroed virtio-net header, padded to 60 bytes.
        byte[] arp =
        [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06,
            0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 10, 98, 0, 2, 0, 0, 0, 0, 0, 0, 10, 98, 0, 1,
        ];
        ulong tx = env.Ram.Allocate(Tap.VnetHeaderSize + 60, 16);
        arp.CopyTo(env.Ram.GetSpan(tx + Tap.VnetHeaderSize, arp.Length));
        ushort sent = env.Tx.Submit([new VirtqBuffer(tx, Tap.VnetHeaderSize + 60, false)]);

        Assert.Equal(sent, env.Tx.WaitForCompletion(Wait).Head);
        Assert.True(env.Tx.WaitForCalls(1, Wait), $"TX used idx {env.Tx.Driver.DeviceUsedIndex}, no call");
        DateTime end = DateTime.UtcNow + Wait;
        long after;
        while ((after = env.Tap.ReadStatistic("rx_packets")) == before && DateTime.UtcNow < end)
        {
            Thread.Sleep(10);
        }

        Assert.True(after > before, $"{env.Tap.Name} rx_packets stayed {before}");
    }

    /// <summary>vhost-net with VERSION_1, 1 MiB of guest RAM, RX and TX rings of 16 set up through <see cref="IVhostBackend"/> by <see cref="VmmVhostDevice"/>, and a tap attached to both.</summary>
    private sealed class NetSetup : IDisposable
    {
        public NetSetup(string tapName)
        {
            Ram = GuestRam.Create(1 << 20);
            Net = VhostNet.Open();
            Device = new VmmVhostDevice(Net, Ram);
            Device.SetOwner();
            Device.SetFeatures(0, required: VersionOne);
            Device.SetMemoryTable();
            Rx = Device.AddQueue(16);
            Tx = Device.AddQueue(16);
            Tap = Tap.Create(tapName);
            Net.SetBackend(0, Tap.Handle);
            Net.SetBackend(1, Tap.Handle);
        }

        public GuestRam Ram { get; }

        public VhostNet Net { get; }

        public VmmVhostDevice Device { get; }

        public VmmQueue Rx { get; }

        public VmmQueue Tx { get; }

        public Tap Tap { get; }

        public void Dispose()
        {
            Net.SetBackend(0, null);
            Net.SetBackend(1, null);
            Device.Stop();
            Net.Dispose();
            Tap.Dispose();
            Device.Dispose();
            Ram.Dispose();
        }
    }
}
