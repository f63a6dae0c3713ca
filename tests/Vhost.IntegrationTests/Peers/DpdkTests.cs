using VhostProbe;
using Vhost.Vmm;

namespace Vhost.IntegrationTests.Peers;

/// <summary>The .NET front-end as the guest side of dpdk-testpmd's net_vhost port: frames sent on TX come back on RX.</summary>
[Collection(PeerCollection.Name)]
public sealed class DpdkTests
{
    [Theory]
    [InlineData("io")]
    [InlineData("macswap")]
    public void Frames_sent_on_tx_come_back_on_rx(string mode)
    {
        using PeerProcess testpmd = DpdkPeer.Start(mode);
        using VmmDevice dev = VmmDevice.Connect(testpmd.SocketPath, new VmmDeviceOptions { QueueCount = 2, QueueSize = 256 });
        Assert.True(dev.EventIdx, "DPDK offers EVENT_IDX");
        Assert.Equal(0UL, dev.AckedFeatures & (1UL << 15)); // no MRG_RXBUF: one buffer per frame

        var client = new VhostProbe.Devices.VirtioNetClient(dev);
        NetResult r = Net.Exchange(client, 2000, 128, TimeSpan.FromSeconds(2));
        Assert.Equal(2000, r.Sent);
        Assert.Equal(2000, r.Received);
        Assert.Equal(2000, r.Matching);
        Assert.Equal(mode == "macswap" ? 2000 : 0, r.MacSwapped);

        NetResult big = Net.Exchange(client, 200, 1514, TimeSpan.FromSeconds(2));
        Assert.Equal(200, big.Matching);
        Assert.False(testpmd.HasExited, testpmd.Output);
    }
}
