using System.Diagnostics;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.UserNet;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// The blk and net samples served to one QEMU guest whose virtio devices use packed rings
/// (<c>packed=on</c>: the guest's driver acks VIRTIO_F_RING_PACKED, which both samples offer). The
/// guest checks the layout it negotiated on each device, writes and reads back 4 MiB with direct
/// I/O from two vCPUs (two blk queues), and pings the net sample's responder (small and 1400-byte packets). The
/// blk device has an inflight region in the packed layout (QEMU always asks for one).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class PackedRingGuestTests
{
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Blk_and_net_serve_a_guest_with_packed_rings(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        var watch = Stopwatch.StartNew();
        using var dir = new TempDirectory("vhost-packed-");
        string disk = dir.CreateFile("disk.img", 16 << 20);
        string socket = Path.Combine(dir.Path, "blk.sock");
        using SampleProcess blk = SampleProcess.Start("vhost-user-blk", ["--socket-path", socket, "--blk-file", disk, "--num-queues", "2", "--verbose"]);
        using NetSample net = NetSample.Start(1, "--mode", "responder", "--ip", "192.0.2.1", "--mac", "02:00:00:00:00:fe", "--verbose");
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Cpus = 2,
            Timeout = TimeSpan.FromSeconds(150),
            Script = NetSampleGuestTests.Prelude + """

                for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
                [ -b /dev/vda ] || { vt_fail blk-present "no /dev/vda"; exit 1; }
                packed() { cut -c35 "$1"; }
                [ "$(packed /sys/block/vda/device/features)" = 1 ] && vt_pass blk-packed "$(cat /sys/block/vda/device/features)" || vt_fail blk-packed "$(cat /sys/block/vda/device/features)"
                [ "$(packed /sys/class/net/eth0/device/features)" = 1 ] && vt_pass net-packed "$(cat /sys/class/net/eth0/device/features)" || vt_fail net-packed "$(cat /sys/class/net/eth0/device/features)"
                head -c 4194304 /dev/urandom > /tmp/pattern
                taskset 1 dd if=/tmp/pattern of=/dev/vda bs=65536 count=32 oflag=direct 2>/tmp/e0 & a=$!
                taskset 2 dd if=/tmp/pattern of=/dev/vda bs=65536 skip=32 seek=32 count=32 oflag=direct 2>/tmp/e1 & b=$!
                wait $a; ra=$?; wait $b; rb=$?
                [ $ra = 0 ] && [ $rb = 0 ] && vt_pass blk-write "two writers" || vt_fail blk-write "dd exit $ra $rb: $(cat /tmp/e0 /tmp/e1)"
                dd if=/dev/vda of=/tmp/back bs=64k count=64 iflag=direct 2>/dev/null
                cmp -s /tmp/pattern /tmp/back && vt_pass blk-readback "md5=$(md5sum < /tmp/pattern | cut -c1-32)" || vt_fail blk-readback "$(cmp /tmp/pattern /tmp/back 2>&1 | head -1)"
                up 192.0.2.10
                ping -c 5 -i 0.2 -w 30 192.0.2.1 > /tmp/ping.out 2>&1
                grep -q ' 5 packets received' /tmp/ping.out && vt_pass ping "$(grep round-trip /tmp/ping.out)" || vt_fail ping "$(tail -2 /tmp/ping.out | tr '\n' ' ')"
                ping -c 3 -s 1400 -w 20 192.0.2.1 > /tmp/big.out 2>&1
                grep -q ' 3 packets received' /tmp/big.out && vt_pass ping-1400 ok || vt_fail ping-1400 "$(tail -2 /tmp/big.out | tr '\n' ' ')"
                dmesg | grep -iE 'I/O error|virtio.*(error|fail|bad|corrupt)|vda.*error|timed? ?out' | head -5 > /tmp/k; [ -s /tmp/k ] && vt_fail kernel "$(tr '\n' ' ' < /tmp/k)" || vt_pass kernel quiet
                """,
        };
        options.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=2,packed=on");
        options.AddVhostUserNet(net.SocketPaths[0], "52:54:00:00:00:01", "packed=on");
        GuestRunResult r = await QemuGuest.RunAsync(options, ct);
        TestContext.Current.TestOutputHelper?.WriteLine($"QEMU {qemu.Version}: {watch.Elapsed.TotalSeconds:F1} s");
        Assert.True(r.Succeeded, r.Describe() + "\nblk:\n" + blk.Output + "\nnet:\n" + net.Output);
        Assert.Equal(["blk-packed", "net-packed", "blk-write", "blk-readback", "ping", "ping-1400", "kernel"], r.Results.Select(x => x.Name));
        Assert.Contains("packed True", blk.Output, StringComparison.Ordinal);
        Assert.Contains("packed True", net.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(" fail: ", blk.Output + net.Output, StringComparison.Ordinal);
        Assert.Equal(0, await net.StopAsync());
    }
}
