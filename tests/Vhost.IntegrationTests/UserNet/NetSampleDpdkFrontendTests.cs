using System.Diagnostics;
using Vhost.IntegrationTests.Peers;

namespace Vhost.IntegrationTests.UserNet;

/// <summary>
/// DPDK's virtio-user (testpmd <c>net_virtio_user</c>, a real front-end with no VM) against the
/// vhost-user-net sample: it sends frames for a few seconds, then stops its port cleanly. Its
/// GET_VRING_BASE carries whatever its stack held in the unused <c>num</c> field; the daemon
/// tolerates it (a refusal used to drop the connection and fail every DPDK front-end's stop).
/// </summary>
[Collection(PeerCollection.Name)]
public sealed class NetSampleDpdkFrontendTests
{
    [Fact(Timeout = 120_000)]
    public async Task Dpdk_virtio_user_sends_frames_and_stops_cleanly()
    {
        Assert.SkipUnless(File.Exists(DpdkPeer.Binary), $"{DpdkPeer.Binary} not installed (tools/install-test-deps.sh installs dpdk-dev)");
        using NetSample sample = NetSample.Start(1, "--mode", "sink");
        string prefix = $"vfe{Environment.ProcessId}";
        var psi = new ProcessStartInfo("timeout")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])["-s", "INT", "8", DpdkPeer.Binary, "-l", "0,1", "--main-lcore", "0", "--no-pci", "--no-huge", "-m", "512", "--no-shconf", "--file-prefix", prefix,
                     "--vdev", $"net_virtio_user0,path={sample.SocketPaths[0]},queues=1", "--", "--forward-mode=txonly", "--auto-start", "--total-num-mbufs=32768", "--stats-period", "1"])
        {
            psi.ArgumentList.Add(a);
        }

        using Process testpmd = Process.Start(psi)!;
        Task<string> stdout = testpmd.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> stderr = testpmd.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await testpmd.WaitForExitAsync(TestContext.Current.CancellationToken);
        string output = await stdout + await stderr;
        try
        {
            Directory.Delete(Path.Combine("/var/run/dpdk", prefix), recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }

        Assert.DoesNotContain("get_vring_base failed", output, StringComparison.Ordinal);
        Assert.Contains("Stopping port 0", output, StringComparison.Ordinal);
        Assert.Equal(0, await sample.StopAsync());
        (long tx, _, _) = sample.Counters(0);
        Assert.True(tx > 1000, $"the sink got {tx} frames\n{output}\n{sample.Output}");
        Assert.DoesNotContain("fail:", sample.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("dropped after an error", sample.Output, StringComparison.Ordinal);
    }
}
