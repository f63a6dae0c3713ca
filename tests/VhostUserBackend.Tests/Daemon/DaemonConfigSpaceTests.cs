using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Config;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Devices.Input;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// A device's <see cref="VirtioConfigSpace"/> served by the daemon to our front-end: CONFIG
/// offered by itself, reads and writes with their checks, the change notification on the
/// back-end channel, and the log lines of the negotiation.
/// </summary>
public sealed class DaemonConfigSpaceTests
{
    private const ulong Sectors = 2048;

    [Fact]
    public void ConfigSpace_OffersConfigByItself_ServesReadsAndWrites()
    {
        var wce = new List<byte>();
        VirtioConfigSpace space = BlkSpace().AllowWrites(VirtioBlkConfig.WritebackOffset, 1, config =>
        {
            if (config[VirtioBlkConfig.WritebackOffset] > 1)
            {
                throw new ArgumentException("writeback is 0 or 1");
            }

            wce.Add(config[VirtioBlkConfig.WritebackOffset]);
        });
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures, ConfigSpace = space };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        Assert.NotEqual(VhostUserProtocolFeatures.None, rig.ProtocolFeatures & VhostUserProtocolFeatures.Config);

        // QEMU reads offset 0 with its own struct size; reads past the layout are zero, up to 256 bytes.
        byte[] all = f.GetConfig(0, 256, VhostUserConfigFlags.None);
        Assert.Equal(Sectors, VirtioBlkConfig.Read(all).Capacity);
        Assert.All(all[VirtioBlkConfig.Size..], b => Assert.Equal(0, b));
        Assert.Equal(BitConverter.GetBytes(512u), f.GetConfig(20, 4, VhostUserConfigFlags.None));
        Assert.Equal(new byte[8], f.GetConfig(0x1000 - 8, 8, VhostUserConfigFlags.None));

        // The writable byte (REPLY_ACK: each SET_CONFIG is acknowledged).
        f.SetConfig(VirtioBlkConfig.WritebackOffset, VhostUserConfigFlags.Writable, [0]);
        Assert.Equal([0], wce);
        Assert.Equal([0], f.GetConfig(VirtioBlkConfig.WritebackOffset, 1, VhostUserConfigFlags.None));

        // Refused: a read-only field, a value the device refuses, past the layout. Nothing changes.
        Assert.Throws<VhostUserPeerRefusedException>(() => f.SetConfig(0, VhostUserConfigFlags.Writable, [1, 2, 3, 4]));
        Assert.Throws<VhostUserPeerRefusedException>(() => f.SetConfig(VirtioBlkConfig.WritebackOffset, VhostUserConfigFlags.Writable, [7]));
        Assert.Throws<VhostUserPeerRefusedException>(() => f.SetConfig(VirtioBlkConfig.Size, VhostUserConfigFlags.Writable, [1]));
        Assert.Equal(Sectors, VirtioBlkConfig.Read(f.GetConfig(0, VirtioBlkConfig.Size, VhostUserConfigFlags.None)).Capacity);
        Assert.Equal([0], f.GetConfig(VirtioBlkConfig.WritebackOffset, 1, VhostUserConfigFlags.None));
        Assert.Equal([0], wce);

        // The device's GetConfig (served by hand) is not called when it has a config space.
        Assert.NotEqual(device.Config[..4], f.GetConfig(0, 4, VhostUserConfigFlags.None));
    }

    [Fact]
    public void HostileConfigHeaders_AreRefused_AndServingGoesOn()
    {
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures, ConfigSpace = BlkSpace().AllowWrites(VirtioBlkConfig.WritebackOffset, 1) };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        foreach ((uint offset, uint size, int body) in new (uint, uint, int)[] { (0, 0, 0), (0, 257, 257), (uint.MaxValue, 4, 4), (0xFFC, 8, 8), (0, 8, 4) })
        {
            // GET_CONFIG fails with a size-0 reply (the form QEMU reads as failure).
            using VhostUserMessage reply = Raw(f, FrontendRequest.GetConfig, offset, size, body);
            Assert.Equal(0, reply.Body.Length);
        }

        Assert.Equal(1UL, RawSetConfig(f, uint.MaxValue - 1, [1, 1]));
        Assert.Equal(1UL, RawSetConfig(f, 0, [1]));
        Assert.Equal(0UL, RawSetConfig(f, VirtioBlkConfig.WritebackOffset, [1]));
        Assert.Equal(Sectors, VirtioBlkConfig.Read(f.GetConfig(0, VirtioBlkConfig.Size, VhostUserConfigFlags.None)).Capacity);
    }

    [Fact]
    public void DeviceChange_WhileTheDriverRuns_IsNotifiedOnTheBackendChannel_AndTheFrontendReadsItBack()
    {
        VirtioConfigSpace space = BlkSpace();
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures, ConfigSpace = space };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false, VhostUserProtocolFeatures.BackendRequest);

        // As QEMU does: the config-change handler reads the config space on the main socket
        // before it acknowledges, so the daemon's control thread must not be the one waiting.
        var handler = new ReadingBackHandler(f);
        f.SetBackendRequestFd(handler);

        // Before DRIVER_OK the driver has not read the space: no notification.
        space.Update((ref VirtioBlkConfig c) => c.Capacity = Sectors + 1);
        rig.Start(eventIdx: false, packed: false);
        space.Update((ref VirtioBlkConfig c) => c.Capacity = Sectors * 2);
        Assert.True(handler.Capacities.TryTake(out ulong seen, 5000, TestContext.Current.CancellationToken), "no CONFIG_CHANGE_MSG arrived");
        Assert.Equal(Sectors * 2, seen);

        // Unchanged bytes: nothing sent.
        space.Update((ref VirtioBlkConfig c) => c.Capacity = Sectors * 2);
        space.Update((ref VirtioBlkConfig c) => c.Capacity = Sectors * 3);
        Assert.True(handler.Capacities.TryTake(out seen, 5000, TestContext.Current.CancellationToken));
        Assert.Equal(Sectors * 3, seen);
        Assert.False(handler.Capacities.TryTake(out _, 200, TestContext.Current.CancellationToken));
        Assert.Equal(2, handler.ConfigChanges);

        // The rings kept working meanwhile.
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        // After the disconnect the space is no longer attached to the connection.
        long connections = rig.Daemon.ConnectionCount;
        rig.DisconnectFrontend();
        DaemonRig.WaitDisconnected(rig.Daemon, connections);
        space.Update((ref VirtioBlkConfig c) => c.Capacity = Sectors * 4);
        Assert.Equal(2, handler.ConfigChanges);
    }

    [Fact]
    public void DeviceChange_WithoutABackendChannel_IsLoggedOnceAtWarning()
    {
        VirtioConfigSpace space = BlkSpace();
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures, ConfigSpace = space };
        using var logs = new TestLogger();
        using var rig = Rig(device, logs);
        rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        space.Update((ref VirtioBlkConfig c) => c.Capacity = 1);
        space.Update((ref VirtioBlkConfig c) => c.Capacity = 2);
        string[] unseen = [.. logs.Entries.Where(e => e.Level == LogLevel.Warning && e.Message.Contains("the driver will not see the change", StringComparison.Ordinal)).Select(e => e.Message)];
        string line = Assert.Single(unseen);
        Assert.Contains("no back-end channel", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Negotiation_IsLoggedOnceByName()
    {
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures, ConfigSpace = BlkSpace() };
        using var logs = new TestLogger();
        using var rig = Rig(device, logs);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);

        // QEMU repeats SET_FEATURES (per vhost device, at each start): one line per negotiation.
        f.SetFeatures(rig.AckedFeatures);
        f.GetQueueNum();
        LogEntry negotiated = Assert.Single(logs.Entries, e => e.Message.StartsWith("negotiated virtio features", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, negotiated.Level);
        Assert.Contains("Version1", negotiated.Message, StringComparison.Ordinal);
        Assert.Contains("RingEventIndex", negotiated.Message, StringComparison.Ordinal);
        Assert.Contains("ProtocolFeatures", negotiated.Message, StringComparison.Ordinal);
        Assert.Contains("Config", negotiated.Message, StringComparison.Ordinal);
        Assert.Contains("ReplyAck", negotiated.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnofferedFeatureBits_AreRefused_ByName()
    {
        var device = new CopyDevice();
        using var logs = new TestLogger();
        using var rig = Rig(device, logs);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        Assert.Throws<VhostUserPeerRefusedException>(() => f.SetFeatures(rig.AckedFeatures | (1UL << 5) | (ulong)Vhost.Virtio.VirtioFeatures.NotificationData));
        logs.WaitFor("which the device did not offer");
        string line = Assert.Single(logs.Lines, l => l.Contains("which the device did not offer", StringComparison.Ordinal));
        Assert.Contains("SetFeatures: acks NotificationData, device bit 5 (0x4000000020)", line, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigRequest_ToADeviceWithoutConfigSpace_SaysToImplementIt()
    {
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures };
        using var logs = new TestLogger();
        using var rig = Rig(device, logs);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        Assert.Equal(VhostUserProtocolFeatures.None, rig.ProtocolFeatures & VhostUserProtocolFeatures.Config);

        // Our front-end checks the gate itself: send the request raw, as a front-end that does not would.
        using (VhostUserMessage reply = Raw(f, FrontendRequest.GetConfig, 0, 8, 8))
        {
            Assert.Equal(0, reply.Body.Length);
        }

        logs.WaitFor("implement IVhostUserBackend.ConfigSpace");
        LogEntry hint = Assert.Single(logs.Entries, e => e.Message.Contains("implement IVhostUserBackend.ConfigSpace", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, hint.Level);
        Assert.Contains("GetConfig", hint.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FrontendLeavingRightAfterGetProtocolFeatures_IsLoggedWithWhatWasOffered()
    {
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures };
        using var logs = new TestLogger();
        using var rig = Rig(device, logs);

        // QEMU's vhost-user-blk against a back-end without CONFIG: GET_FEATURES, GET_PROTOCOL_FEATURES, close.
        long connections = rig.Daemon.ConnectionCount;
        using (VhostUserFrontend f = VhostUserFrontend.Connect(rig.SocketPath, TimeSpan.FromSeconds(5)))
        {
            f.GetFeatures();
            f.GetProtocolFeatures();
        }

        DaemonRig.WaitDisconnected(rig.Daemon, connections + 1);
        logs.WaitFor("disconnected right after");
        LogEntry line = Assert.Single(logs.Entries, e => e.Message.Contains("disconnected right after", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Contains("right after GetProtocolFeatures", line.Message, StringComparison.Ordinal);
        Assert.Contains("CONFIG is not offered", line.Message, StringComparison.Ordinal);
        Assert.Contains("BackendRequest", line.Message, StringComparison.Ordinal);

        // A front-end that got as far as SET_FEATURES and left is no negotiation failure.
        using (VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false))
        {
        }

        DaemonRig.WaitDisconnected(rig.Daemon, connections + 2);
        Assert.Single(logs.Entries, e => e.Message.Contains("disconnected right after", StringComparison.Ordinal));
    }

    [Fact]
    public void VirtioInput_AnswersQueries_AsQemuSendsThem()
    {
        var input = new VirtioInputConfigSpace("vt keyboard").WithEvents(VirtioInputEventType.Key, 1, 30);
        var device = new CopyDevice { BaseProtocolFeatures = IVhostUserBackend.DefaultProtocolFeatures, ConfigSpace = input.Space };
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);

        // QEMU's vhost-user-input: on each driver write of select or subsel, SET_CONFIG of the whole
        // 136 bytes it last read; on each driver read, GET_CONFIG of the whole 136 bytes.
        byte[] config = f.GetConfig(0, VirtioInputConfig.Size, VhostUserConfigFlags.None);
        config[0] = (byte)VirtioInputConfigSelect.IdName;
        f.SetConfig(0, VhostUserConfigFlags.Writable, config);
        config[1] = 0;
        f.SetConfig(0, VhostUserConfigFlags.Writable, config);
        config = f.GetConfig(0, VirtioInputConfig.Size, VhostUserConfigFlags.None);
        Assert.Equal("vt keyboard"u8.ToArray(), config.AsSpan(VirtioInputConfig.PayloadOffset, config[2]).ToArray());

        config[0] = (byte)VirtioInputConfigSelect.EventBits;
        f.SetConfig(0, VhostUserConfigFlags.Writable, config);
        config[1] = (byte)VirtioInputEventType.Key;
        f.SetConfig(0, VhostUserConfigFlags.Writable, config);
        config = f.GetConfig(0, VirtioInputConfig.Size, VhostUserConfigFlags.None);
        Assert.Equal(4, config[2]);
        Assert.Equal([1 << 1, 0, 0, 1 << 6], config.AsSpan(VirtioInputConfig.PayloadOffset, 4).ToArray());

        // The Linux driver's own byte writes (a front-end that forwards them as they are).
        f.SetConfig(VirtioInputConfig.SubselOffset, VhostUserConfigFlags.Writable, [(byte)VirtioInputEventType.Relative]);
        Assert.Equal([0], f.GetConfig(2, 1, VhostUserConfigFlags.None));
        Assert.Throws<VhostUserPeerRefusedException>(() => f.SetConfig(2, VhostUserConfigFlags.Writable, [1]));
    }

    private static VirtioConfigSpace BlkSpace()
        => VirtioConfigSpace.Create(new VirtioBlkConfig { Capacity = Sectors, BlockSize = 512, Writeback = 1 });

    private static DaemonRig Rig(CopyDevice device, TestLogger logs)
    {
        var daemon = new VhostUserDaemon(device, logs);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        return new DaemonRig(device, daemon, path);
    }

    private static VhostUserMessage Raw(VhostUserFrontend f, FrontendRequest request, uint offset, uint size, int body)
    {
        byte[] payload = new byte[VhostUserLimits.ConfigHeaderSize + body];
        var header = new VhostUserConfigHeader(offset, size, VhostUserConfigFlags.None);
        MemoryMarshal.Write(payload, in header);
        f.Connection.Send((uint)request, VhostUserHeaderFlags.Version1, payload);
        return f.Connection.Receive(5000);
    }

    private static ulong RawSetConfig(VhostUserFrontend f, uint offset, byte[] data)
    {
        byte[] payload = new byte[VhostUserLimits.ConfigHeaderSize + data.Length];
        var header = new VhostUserConfigHeader(offset, (uint)data.Length, VhostUserConfigFlags.Writable);
        MemoryMarshal.Write(payload, in header);
        data.CopyTo(payload, VhostUserLimits.ConfigHeaderSize);
        f.Connection.Send((uint)FrontendRequest.SetConfig, VhostUserHeaderFlags.Version1 | VhostUserHeaderFlags.NeedReply, payload);
        using VhostUserMessage reply = f.Connection.Receive(5000);
        return reply.Read<VhostUserU64>().Value;
    }

    /// <summary>Answers CONFIG_CHANGE_MSG as QEMU's vhost-user-blk does: reads the capacity back on the main socket first.</summary>
    private sealed class ReadingBackHandler(VhostUserFrontend frontend) : IVhostUserFrontendRequestHandler
    {
        private int _configChanges;

        public System.Collections.Concurrent.BlockingCollection<ulong> Capacities { get; } = [];

        public int ConfigChanges => Volatile.Read(ref _configChanges);

        public void ConfigChange()
        {
            Interlocked.Increment(ref _configChanges);
            Capacities.Add(VirtioBlkConfig.Read(frontend.GetConfig(0, VirtioBlkConfig.Size, VhostUserConfigFlags.None)).Capacity);
        }
    }
}
