using System.Diagnostics;
using System.Text.Json;

namespace Vhost.IntegrationTests.Peers;

/// <summary>The <c>vhost-probe</c> executable against each of the four third-party back-ends: the decoded capabilities it prints (JSON) are asserted.</summary>
[Collection(PeerCollection.Name)]
public sealed class ProbeTests
{
    private const long DiskBytes = 8 << 20;

    [Fact]
    public void Probe_decodes_qemu_storage_daemon()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        using JsonDocument doc = RunProbe(qsd.SocketPath);
        JsonElement j = doc.RootElement;
        Assert.Equal("blk", j.GetProperty("device").GetString());
        Assert.True(j.GetProperty("device_inferred").GetBoolean());
        string[] features = Names(j, "feature_names");
        Assert.Subset(features.ToHashSet(), new HashSet<string> { "VIRTIO_BLK_F_SEG_MAX", "VIRTIO_BLK_F_BLK_SIZE", "VIRTIO_BLK_F_FLUSH", "VIRTIO_BLK_F_DISCARD", "VIRTIO_BLK_F_WRITE_ZEROES", "VIRTIO_RING_F_EVENT_IDX", "VHOST_USER_F_PROTOCOL_FEATURES", "VIRTIO_F_VERSION_1" });
        Assert.DoesNotContain(features, n => n.StartsWith("VIRTIO_NET_", StringComparison.Ordinal) || n.StartsWith("BIT_", StringComparison.Ordinal));
        Assert.Subset(Names(j, "protocol_feature_names").ToHashSet(), new HashSet<string> { "MQ", "REPLY_ACK", "CONFIG", "CONFIGURE_MEM_SLOTS" });
        Assert.Equal(1, j.GetProperty("queue_count").GetInt32());
        Assert.True(j.GetProperty("max_memory_slots").GetInt32() >= 8);
        JsonElement config = j.GetProperty("config");
        Assert.Equal(DiskBytes / 512, config.GetProperty("capacity_sectors").GetInt64());
        Assert.Equal(512, config.GetProperty("blk_size").GetInt32());
        Assert.Equal(1, config.GetProperty("num_queues").GetInt32());
        AssertConsistent(j);
    }

    [Fact]
    public void Probe_decodes_dpdk_net_vhost()
    {
        using PeerProcess testpmd = DpdkPeer.Start("io");
        using JsonDocument doc = RunProbe(testpmd.SocketPath);
        JsonElement j = doc.RootElement;
        Assert.Equal("net", j.GetProperty("device").GetString());
        string[] features = Names(j, "feature_names");
        Assert.Subset(features.ToHashSet(), new HashSet<string> { "VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_CTRL_VQ", "VIRTIO_NET_F_MQ", "VIRTIO_NET_F_GUEST_ANNOUNCE", "VIRTIO_RING_F_EVENT_IDX", "VIRTIO_F_VERSION_1", "VIRTIO_F_RING_PACKED" });
        Assert.DoesNotContain(features, n => n.StartsWith("VIRTIO_BLK_", StringComparison.Ordinal));
        Assert.Subset(Names(j, "protocol_feature_names").ToHashSet(), new HashSet<string> { "MQ", "REPLY_ACK", "RARP", "NET_MTU", "STATUS" });
        Assert.True(j.GetProperty("queue_count").GetInt32() >= 1);
        Assert.Equal(JsonValueKind.Null, j.GetProperty("config").ValueKind);
        Assert.Equal("CONFIG protocol feature not offered", j.GetProperty("config_error").GetString());
        AssertConsistent(j);
    }

    [Fact]
    public void Probe_decodes_c_virtiofsd() => AssertVirtiofsd(VirtiofsdPeer.StartC(out _));

    [Fact]
    public void Probe_decodes_rust_virtiofsd() => AssertVirtiofsd(VirtiofsdPeer.StartRust(out _));

    [Fact]
    public void Probe_text_output_names_the_features_and_a_missing_socket_fails_cleanly()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        (int rc, string stdout, string stderr) = Run(["--socket-path", qsd.SocketPath, "--device", "blk"]);
        Assert.True(rc == 0, stderr);
        Assert.Contains("device:            blk\n", stdout, StringComparison.Ordinal);
        Assert.Contains("  VIRTIO_BLK_F_FLUSH\n", stdout, StringComparison.Ordinal);
        Assert.Contains($"  capacity_sectors = {DiskBytes / 512}\n", stdout, StringComparison.Ordinal);

        (rc, _, stderr) = Run(["--socket-path", Path.Combine(qsd.Directory.FullName, "absent.sock"), "--timeout", "0.2"]);
        Assert.Equal(1, rc);
        Assert.Contains("ENOENT", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_blk_subcommand_verifies_at_queue_depth_8()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        (int rc, string stdout, string stderr) = Run(["blk", "--socket-path", qsd.SocketPath, "--json", "--seconds", "0.5", "--queue-depth", "8", "--op", "verify"]);
        Assert.True(rc == 0, stderr + stdout);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement j = doc.RootElement;
        Assert.True(j.GetProperty("requests").GetInt64() > 100, stdout);
        Assert.Equal(0, j.GetProperty("errors").GetInt64());
        Assert.Equal(0, j.GetProperty("mismatches").GetInt64());
        Assert.True(j.GetProperty("latency_p50_us").GetDouble() > 0);
        TestContext.Current.TestOutputHelper?.WriteLine(stdout);
    }

    private static void AssertVirtiofsd(PeerProcess peer)
    {
        using (peer)
        {
            using JsonDocument doc = RunProbe(peer.SocketPath);
            JsonElement j = doc.RootElement;
            Assert.Equal("fs", j.GetProperty("device").GetString());
            string[] features = Names(j, "feature_names");
            Assert.Subset(features.ToHashSet(), new HashSet<string> { "VIRTIO_RING_F_INDIRECT_DESC", "VIRTIO_RING_F_EVENT_IDX", "VHOST_USER_F_PROTOCOL_FEATURES", "VIRTIO_F_VERSION_1" });
            Assert.DoesNotContain(features, n => n.StartsWith("BIT_", StringComparison.Ordinal));
            Assert.Subset(Names(j, "protocol_feature_names").ToHashSet(), new HashSet<string> { "MQ", "REPLY_ACK", "CONFIGURE_MEM_SLOTS" });
            Assert.Equal(2, j.GetProperty("queue_count").GetInt32()); // hiprio + one request queue
            Assert.True(j.GetProperty("max_memory_slots").GetInt32() >= 8);
            AssertConsistent(j);
        }
    }

    /// <summary>The names match the numeric value bit for bit (count of names = popcount).</summary>
    private static void AssertConsistent(JsonElement j)
    {
        ulong features = j.GetProperty("features_value").GetUInt64();
        Assert.Equal($"0x{features:x16}", j.GetProperty("features").GetString());
        Assert.Equal(ulong.PopCount(features), (ulong)Names(j, "feature_names").Length);
        ulong protocol = j.GetProperty("protocol_features_value").GetUInt64();
        Assert.Equal(ulong.PopCount(protocol), (ulong)Names(j, "protocol_feature_names").Length);
    }

    private static string[] Names(JsonElement j, string property) => [.. j.GetProperty(property).EnumerateArray().Select(e => e.GetString()!)];

    private static JsonDocument RunProbe(string socket)
    {
        (int rc, string stdout, string stderr) = Run(["--socket-path", socket, "--json"]);
        Assert.True(rc == 0, $"vhost-probe exited {rc}: {stderr}");
        TestContext.Current.TestOutputHelper?.WriteLine(stdout);
        return JsonDocument.Parse(stdout);
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(IEnumerable<string> args)
    {
        string apphost = Path.Combine(AppContext.BaseDirectory, "vhost-probe");
        return File.Exists(apphost)
            ? ChildProcess.Run(apphost, args)
            : ChildProcess.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "vhost-probe.dll"), .. args]);
    }
}
