using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Config;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// The device-type requests a device serves through the daemon: GET_SHMEM_CONFIG, GET_SHARED_OBJECT
/// and GPU_SET_SOCKET reach <see cref="IVhostUserBackend"/>, and a device that does not implement
/// them refuses each without harm.
/// </summary>
public sealed class DaemonDeviceRequestTests
{
    private static readonly Guid Known = Guid.Parse("5f3c2b1a-0000-4000-8000-000000000001");

    [Fact]
    public void ShmemConfig_SharedObject_And_GpuSocket_ReachTheDevice()
    {
        using var device = new RequestDevice();
        using var daemon = new VhostUserDaemon(device);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using VhostUserFrontend f = Negotiate(path, VhostUserProtocolFeatures.Shmem | VhostUserProtocolFeatures.SharedObject);

        VhostUserShmemConfig config = f.GetShmemConfig();
        Assert.Equal(1u, config.RegionCount);
        Assert.Equal(1UL << 21, config.MemorySizes[0]);

        using (SafeFileHandle shared = f.GetSharedObject(Known))
        {
            Assert.False(shared.IsInvalid);
        }

        Assert.Throws<VhostUserPeerRefusedException>(() => f.GetSharedObject(Guid.Parse("5f3c2b1a-0000-4000-8000-000000000002")));

        (SafeFileHandle ours, SafeFileHandle theirs) = UnixSocket.CreatePair();
        using (ours)
        using (theirs)
        {
            f.GpuSetSocket(theirs);
        }

        Assert.True(device.GpuSocket.Wait(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        Assert.False(device.ReceivedGpuSocket!.IsInvalid);
    }

    [Fact]
    public void A_device_without_them_refuses_each_and_keeps_serving()
    {
        using var daemon = new VhostUserDaemon(new CopyDevice());
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using VhostUserFrontend f = Negotiate(path, VhostUserProtocolFeatures.None);

        // Not offered: the front-end refuses to send them at all.
        Assert.Throws<InvalidOperationException>(() => f.GetShmemConfig());
        Assert.Throws<InvalidOperationException>(() => f.GetSharedObject(Known));

        // GPU_SET_SOCKET has no gate: the device's default closes the fd and refuses.
        (SafeFileHandle ours, SafeFileHandle theirs) = UnixSocket.CreatePair();
        using (ours)
        using (theirs)
        {
            Assert.Throws<VhostUserPeerRefusedException>(() => f.GpuSetSocket(theirs));
        }

        Assert.Equal(1, f.GetQueueNum());
    }

    private static VhostUserFrontend Negotiate(string path, VhostUserProtocolFeatures extra)
    {
        VhostUserFrontend f = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(5));
        f.GetFeatures();
        f.SetFeatures((ulong)VirtioFeatures.Version1 | (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
        VhostUserProtocolFeatures offered = f.GetProtocolFeatures();
        f.SetProtocolFeatures(offered & (VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.MQ | extra));
        f.SetOwner();
        return f;
    }

    private sealed class RequestDevice : IVhostUserBackend, IDisposable
    {
        public ManualResetEventSlim GpuSocket { get; } = new(false);

        public SafeFileHandle? ReceivedGpuSocket { get; private set; }

        public int QueueCount => 1;

        public ushort MaxQueueSize => 64;

        public ulong Features => (ulong)VirtioFeatures.Version1;

        public VhostUserProtocolFeatures ProtocolFeatures => IVhostUserBackend.DefaultProtocolFeatures | VhostUserProtocolFeatures.Shmem | VhostUserProtocolFeatures.SharedObject;

        public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
        {
        }

        public VhostUserShmemConfig GetShmemConfig()
        {
            var config = new VhostUserShmemConfig { RegionCount = 1 };
            config.MemorySizes[0] = 1UL << 21;
            return config;
        }

        public SafeFileHandle? GetSharedObject(Guid uuid) => uuid == Known ? File.OpenHandle("/dev/null") : null;

        public void SetGpuSocket(SafeFileHandle socket)
        {
            ReceivedGpuSocket?.Dispose();
            ReceivedGpuSocket = socket;
            GpuSocket.Set();
        }

        public void Dispose()
        {
            ReceivedGpuSocket?.Dispose();
            GpuSocket.Dispose();
        }
    }
}
