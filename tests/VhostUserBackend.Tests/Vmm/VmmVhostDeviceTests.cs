using System.Text;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using Vhost.Vmm;
using VhostUserBackend.Testing;
using VhostUserBackend.Tests.Daemon;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Vmm;

/// <summary>
/// <see cref="VmmVhostDevice"/>, the VMM helper that drives any frontend through
/// <see cref="IVhostBackend"/> only, against an in-process vhost-user daemon (the kernel vhost-net,
/// vhost-vsock and vDPA runs of the same helper are in tests/Vhost.KernelTests).
/// </summary>
public sealed class VmmVhostDeviceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private const ulong Version1 = (ulong)VirtioFeatures.Version1;

    [Fact]
    public void Drives_a_vhost_user_daemon_through_IVhostBackend_only()
    {
        var copy = new CopyDevice(queues: 2, packed: false);
        string socket = DaemonRig.NewSocketPath();
        using var daemon = new VhostUserDaemon(copy);
        daemon.Start(socket);
        using VhostUserFrontend frontend = VhostUserFrontend.Connect(socket, Wait);
        using GuestRam ram = GuestRam.Create(4 << 20);
        IVhostBackend backend = frontend;
        using var device = new VmmVhostDevice(backend, ram, VringAddressKind.FrontendVirtual);

        ulong offered = device.GetFeatures();
        Assert.Equal(offered, device.OfferedFeatures);
        device.SetOwner();
        // Without PROTOCOL_FEATURES a vhost-user ring starts enabled: no vhost-user-only call is needed.
        ulong acked = device.SetFeatures((ulong)VirtioFeatures.RingEventIndex, required: Version1);
        Assert.Equal(Version1 | (ulong)VirtioFeatures.RingEventIndex, acked);
        Assert.Equal(acked, frontend.AckedFeatures);
        Assert.True(device.EventIndex);
        device.SetMemoryTable();
        VmmQueue q0 = device.AddQueue(64);
        VmmQueue q1 = device.AddQueue(32, maxSize: 256);
        Assert.Equal([0, 1], device.Queues.Select(q => q.Index));

        foreach ((VmmQueue q, string text) in new[] { (q0, "through IVhostBackend, queue 0"), (q1, "and queue 1") })
        {
            byte[] input = Encoding.ASCII.GetBytes(text);
            ulong source = ram.Allocate((ulong)input.Length);
            ulong target = ram.Allocate(256);
            ram.Write(source, input);
            ushort head = q.Submit([new VirtqBuffer(source, (uint)input.Length, false), new VirtqBuffer(target, 256, true)]);
            VmmCompletion done = q.WaitForCompletion(head, Wait);
            Assert.Equal((uint)input.Length, done.Length);
            Assert.Equal(input, ram.GetSpan(target, input.Length).ToArray());
            Assert.True(q.WaitForCalls(1, Wait), $"queue {q.Index}: no call");
        }

        // GET_VRING_BASE stops each ring and reports where it stopped: one chain taken per queue.
        Assert.Equal([1u, 1u], device.Stop());
    }

    [Fact]
    public void A_required_feature_the_device_lacks_is_refused_before_anything_is_acked()
    {
        var copy = new CopyDevice(packed: false);
        string socket = DaemonRig.NewSocketPath();
        using var daemon = new VhostUserDaemon(copy);
        daemon.Start(socket);
        using VhostUserFrontend frontend = VhostUserFrontend.Connect(socket, Wait);
        using GuestRam ram = GuestRam.Create(1 << 20);
        using var device = new VmmVhostDevice(frontend, ram, VringAddressKind.FrontendVirtual);
        device.SetOwner();

        NotSupportedException e = Assert.Throws<NotSupportedException>(() => device.SetFeatures(Version1, required: 1UL << 40));
        Assert.Contains("0x10000000000", e.Message, StringComparison.Ordinal);
        Assert.Equal(0UL, device.AckedFeatures);
        Assert.Equal(0UL, frontend.AckedFeatures);
        Assert.Equal(Version1, device.SetFeatures(Version1));
    }

    [Fact]
    public void Bad_arguments_get_clear_errors_and_no_queue()
    {
        using GuestRam ram = GuestRam.Create(64 << 10);
        var frontend = new RecordingBackend();
        Assert.Throws<ArgumentNullException>(() => new VmmVhostDevice(null!, ram));
        Assert.Throws<ArgumentNullException>(() => new VmmVhostDevice(frontend, null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VmmVhostDevice(frontend, ram, (VringAddressKind)7));

        var device = new VmmVhostDevice(frontend, ram);
        Assert.Throws<ArgumentOutOfRangeException>(() => device.AddQueue(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => device.AddQueue(24));
        Assert.Throws<ArgumentOutOfRangeException>(() => device.AddQueue(16, maxSize: 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => device.AddQueue(16, maxIndirectEntries: -1));
        Assert.Throws<InvalidOperationException>(() => device.AddQueue(32768)); // 64 KiB has no room for the ring
        Assert.Empty(device.Queues);
        Assert.Empty(frontend.Calls);

        // A transport failure leaves no queue behind (its eventfds are closed).
        frontend.FailOn = nameof(IVhostBackend.SetVringAddress);
        Assert.Throws<VhostException>(() => device.AddQueue(16));
        Assert.Empty(device.Queues);

        frontend.FailOn = null;
        VmmQueue q = device.AddQueue(16);
        Assert.Equal(["SetVringNum(0)", "SetVringBase(0)", "SetVringNum(0)", "SetVringBase(0)", "SetVringAddress(0)", "SetVringCall(0)", "SetVringKick(0)"], frontend.Calls);
        Assert.Equal(VringConfigDataFor(q), frontend.LastAddress);
        device.Dispose();
        device.Dispose();
        Assert.True(q.Kick.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => device.AddQueue(16));
        Assert.Throws<ObjectDisposedException>(() => device.Stop());
    }

    /// <summary>With <see cref="VringAddressKind.GuestPhysical"/> the ring addresses are the driver's guest physical addresses.</summary>
    private static VringConfigData VringConfigDataFor(VmmQueue q)
        => new(q.Driver.Size, q.Driver.Size, VringFlags.None, q.Driver.DescriptorTableAddress, q.Driver.UsedRingAddress, q.Driver.AvailRingAddress);

    /// <summary>An <see cref="IVhostBackend"/> that records calls and can fail one of them.</summary>
    private sealed class RecordingBackend : IVhostBackend
    {
        public List<string> Calls { get; } = [];

        public string? FailOn { get; set; }

        public VringConfigData LastAddress { get; private set; }

        public ulong GetFeatures() => Record(nameof(GetFeatures), Version1);

        public void SetFeatures(ulong features) => Record(nameof(SetFeatures), 0);

        public void SetOwner() => Record(nameof(SetOwner), 0);

        public void ResetOwner() => Record(nameof(ResetOwner), 0);

        public void SetMemoryTable(IReadOnlyList<VhostMemoryRegionInfo> regions) => Record(nameof(SetMemoryTable), 0);

        public void SetLogBase(ulong baseAddress, VhostDirtyLogRegion? region) => Record(nameof(SetLogBase), 0);

        public void SetLogFd(System.Runtime.InteropServices.SafeHandle fd) => Record(nameof(SetLogFd), 0);

        public void SetVringNum(int queueIndex, ushort num) => Record($"{nameof(SetVringNum)}({queueIndex})", 0);

        public void SetVringAddress(int queueIndex, in VringConfigData config)
        {
            Record($"{nameof(SetVringAddress)}({queueIndex})", 0);
            LastAddress = config;
        }

        public void SetVringBase(int queueIndex, uint baseValue) => Record($"{nameof(SetVringBase)}({queueIndex})", 0);

        public uint GetVringBase(int queueIndex) => (uint)Record($"{nameof(GetVringBase)}({queueIndex})", 0);

        public void SetVringKick(int queueIndex, EventFd? fd) => Record($"{nameof(SetVringKick)}({queueIndex})", 0);

        public void SetVringCall(int queueIndex, EventFd? fd) => Record($"{nameof(SetVringCall)}({queueIndex})", 0);

        public void SetVringError(int queueIndex, EventFd? fd) => Record($"{nameof(SetVringError)}({queueIndex})", 0);

        private ulong Record(string call, ulong result)
        {
            if (FailOn is not null && call.StartsWith(FailOn, StringComparison.Ordinal))
            {
                throw new VhostException(Errno.EINVAL, call);
            }

            Calls.Add(call);
            return result;
        }
    }
}
