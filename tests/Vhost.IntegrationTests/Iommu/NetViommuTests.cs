using Vhost.GuestHarness;
using Vhost.IntegrationTests.UserNet;

namespace Vhost.IntegrationTests.Iommu;

/// <summary>
/// The vhost-user-net sample behind QEMU's emulated Intel vIOMMU (<c>virtio-net-pci,
/// iommu_platform=on,ats=on</c>, the guest in strict mode, so every transmitted frame's buffer is
/// unmapped, and its IOTLB entry invalidated in the daemon, as soon as it completes): the guest
/// pings the responder with small and large frames, and the replies arrive in receive buffers
/// the daemon reached through IOVAs.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class NetViommuTests
{
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("10")]
    [InlineData("7.2")]
    public async Task Guest_behind_an_intel_vIOMMU_in_strict_mode_pings_the_responder(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        using NetSample sample = NetSample.Start(1, "--mode", "responder", "--ip", "192.0.2.1", "--mac", "02:00:00:00:00:fe");
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Timeout = TimeSpan.FromSeconds(120),
            Script = NetSampleGuestTests.Prelude + """

                vt_pass access-platform "$(cut -c34 /sys/class/net/eth0/device/features)"
                up 192.0.2.10
                ping -c 20 -i 0.05 -w 30 192.0.2.1 > /tmp/ping.out 2>&1
                grep -q ' 20 packets received' /tmp/ping.out && vt_pass ping "$(grep round-trip /tmp/ping.out)" || vt_fail ping "$(tail -2 /tmp/ping.out | tr '\n' ' ')"
                ping -c 10 -i 0.05 -s 1400 -w 30 192.0.2.1 > /tmp/big.out 2>&1
                grep -q ' 10 packets received' /tmp/big.out && vt_pass ping-1400 ok || vt_fail ping-1400 "$(tail -2 /tmp/big.out | tr '\n' ' ')"
                """,
        };
        options.KernelArguments.Add("intel_iommu=on");
        options.KernelArguments.Add("iommu.strict=1");
        options.AddArguments("-device", "intel-iommu,intremap=off,device-iotlb=on");
        options.AddVhostUserNet(sample.SocketPaths[0], "52:54:00:00:00:01", "disable-legacy=on,iommu_platform=on,ats=on");
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine($"guest {r.Elapsed.TotalSeconds:F1} s");
        Assert.True(r.Succeeded, r.Describe() + "\nsample:\n" + sample.Output);
        Assert.Equal("1", r.Find("access-platform")?.Detail);
        Assert.Equal(["access-platform", "ping", "ping-1400"], r.Results.Select(x => x.Name));
        Assert.Contains("VIRTIO_F_ACCESS_PLATFORM acked", sample.Output, StringComparison.Ordinal);
        Assert.Equal(0, await sample.StopAsync());
        (long tx, long rx, _) = sample.Counters(0);
        Assert.True(tx >= 30 && rx >= 30, sample.Output);
    }
}
