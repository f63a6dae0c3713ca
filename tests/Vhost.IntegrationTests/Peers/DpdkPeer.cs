namespace Vhost.IntegrationTests.Peers;

/// <summary>dpdk-testpmd (package dpdk-dev) with a net_vhost port: a vhost-user-net back-end that forwards what the guest sends back to it.</summary>
internal static class DpdkPeer
{
    public const string Binary = "/usr/bin/dpdk-testpmd";

    private static int s_instance;

    /// <summary>Starts testpmd in <paramref name="forwardMode"/> (io, macswap) on a new socket; 512 MiB of no-huge memory, no shared config files, a private file prefix.</summary>
    public static PeerProcess Start(string forwardMode)
    {
        Assert.SkipUnless(File.Exists(Binary), $"{Binary} not installed (apt package dpdk-dev, with librte-net-vhost23; tools/install-test-deps.sh installs them)");
        DirectoryInfo dir = PeerProcess.CreateDirectory("dpdk");
        string socket = Path.Combine(dir.FullName, "net.sock");
        string prefix = $"vhost{Environment.ProcessId}x{Interlocked.Increment(ref s_instance)}";
        PeerProcess p = PeerProcess.Start("dpdk-testpmd", dir, socket, 60, Binary,
        [
            "-l", "0,1", "--main-lcore", "0", "--no-pci", "--no-huge", "-m", "512", "--no-shconf", "--file-prefix", prefix,
            "--vdev", $"net_vhost0,iface={socket},queues=1",
            "--", $"--forward-mode={forwardMode}", "--auto-start", "--total-num-mbufs=32768",
        ]);
        p.Cleanup = () => Directory.Delete(Path.Combine("/var/run/dpdk", prefix), recursive: true);
        return p;
    }
}
