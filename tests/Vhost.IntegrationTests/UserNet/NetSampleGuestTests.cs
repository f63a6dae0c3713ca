using System.Diagnostics;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.UserNet;

/// <summary>
/// The vhost-user-net sample (a separate process) served to real QEMU guests (virtio-net-pci with
/// <c>-netdev vhost-user</c>, INTx as QEMU 7.2 under TCG needs): a guest pings the responder, two
/// guests ping each other through the switch, the sink completes what a guest sends, and the
/// source fills the buffers a guest posts. The guests talk only to the sample, never to a host
/// interface. They skip (never pass) when QEMU or the guest kernel cannot be had.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class NetSampleGuestTests
{
    /// <summary>Guest helpers: bring eth0 up with an address, count ICMP echo replies sent.</summary>
    internal const string Prelude = """
        . /run/vhosttest/lib.sh
        up() { ip link set eth0 up && ip addr add "$1/24" dev eth0; }
        echoreps() { awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "OutEchoReps") c = i; h = 1 } else print $c }' /proc/net/snmp; }
        stat() { cat /sys/class/net/eth0/statistics/$1; }
        """;

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task A_guest_pings_the_responder(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        var watch = Stopwatch.StartNew();
        using NetSample sample = NetSample.Start(1, "--mode", "responder", "--ip", "192.0.2.1", "--mac", "02:00:00:00:00:fe");
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Timeout = TimeSpan.FromSeconds(120),
            Script = Prelude + """

                up 192.0.2.10
                ping -c 5 -i 0.2 -w 30 192.0.2.1 > /tmp/ping.out 2>&1
                cat /tmp/ping.out
                grep -q ' 5 packets received' /tmp/ping.out && vt_pass ping "$(grep round-trip /tmp/ping.out)" || vt_fail ping "$(tail -2 /tmp/ping.out | tr '\n' ' ')"
                ping -c 2 -s 1400 -w 20 192.0.2.1 > /tmp/big.out 2>&1
                grep -q ' 2 packets received' /tmp/big.out && vt_pass ping-1400 ok || vt_fail ping-1400 "$(tail -2 /tmp/big.out | tr '\n' ' ')"
                ip neigh show | grep -q '192.0.2.1 dev eth0 lladdr 02:00:00:00:00:fe' && vt_pass arp "$(ip neigh show | head -1)" || vt_fail arp "$(ip neigh show)"
                """,
        };
        options.AddVhostUserNet(sample.SocketPaths[0], "52:54:00:00:00:01");
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        Report(watch, r, sample);

        Assert.True(r.Succeeded, r.Describe() + "\nsample:\n" + sample.Output);
        Assert.Equal(["ping", "ping-1400", "arp"], r.Results.Select(x => x.Name));
        Assert.Equal(0, await sample.StopAsync());
        (long tx, long rx, _) = sample.Counters(0);
        Assert.True(tx >= 8 && rx >= 8, sample.Output); // 7 echo requests and at least one ARP request, each answered
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task A_two_vcpu_guest_uses_both_queue_pairs_with_mq_on(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        // QEMU negotiates MQ (VHOST_USER_PROTOCOL_F_MQ, VIRTIO_NET_F_MQ) and starts four rings;
        // Linux opens one queue pair per vCPU and maps CPU n's transmissions to TX queue n (XPS),
        // so a ping pinned to each vCPU only gets its replies when both TX rings are served.
        var watch = Stopwatch.StartNew();
        using NetSample sample = NetSample.Start(1, "--mode", "responder", "--ip", "192.0.2.1", "--mac", "02:00:00:00:00:fe", "--num-queues", "2");
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Cpus = 2,
            Timeout = TimeSpan.FromSeconds(150),
            Script = Prelude + """

                up 192.0.2.10
                q=$(ls /sys/class/net/eth0/queues | tr '\n' ' ')
                case "$q" in *rx-1*tx-1*) vt_pass queues "$q" ;; *) vt_fail queues "$q" ;; esac
                for cpu in 0 1; do
                  taskset -c $cpu ping -c 4 -i 0.2 -w 40 192.0.2.1 > /tmp/ping$cpu.out 2>&1
                  grep -q ' 4 packets received' /tmp/ping$cpu.out && vt_pass ping-cpu$cpu "$(grep round-trip /tmp/ping$cpu.out)" || vt_fail ping-cpu$cpu "$(tail -2 /tmp/ping$cpu.out | tr '\n' ' ')"
                done
                """,
        };
        options.AddVhostUserNet(sample.SocketPaths[0], "52:54:00:00:00:01", "mq=on", queues: 2);
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        Report(watch, r, sample);

        Assert.True(r.Succeeded, r.Describe() + "\nsample:\n" + sample.Output);
        Assert.Equal(["queues", "ping-cpu0", "ping-cpu1"], r.Results.Select(x => x.Name));
        Assert.Equal(0, await sample.StopAsync());
        (long tx, long rx, _) = sample.Counters(0);
        Assert.True(tx >= 8 && rx >= 8, sample.Output);
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Two_guests_ping_each_other_through_the_switch(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        var watch = Stopwatch.StartNew();
        using NetSample sample = NetSample.Start(2, "--mode", "switch");
        GuestImage image = await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken);

        // Each guest waits until the other answers (the two boot at different speeds under TCG,
        // more so on a loaded machine: a guest that pinged a peer still booting failed the test),
        // pings it 5 times, then stays up until it has answered 5 echo requests, so neither powers
        // off while the other still needs it.
        QemuGuestOptions Guest(int me, int peer)
        {
            var o = new QemuGuestOptions
            {
                Qemu = qemu,
                MemoryMiB = 256,
                Timeout = TimeSpan.FromSeconds(150),
                Script = Prelude + $$"""

                    up 192.0.2.1{{me}}
                    n=0; until ping -c 1 -W 1 192.0.2.1{{peer}} > /dev/null 2>&1 || [ $n -ge 90 ]; do n=$((n + 1)); done
                    ping -c 5 -i 0.3 -w 30 192.0.2.1{{peer}} > /tmp/ping.out 2>&1
                    grep -q ' 5 packets received' /tmp/ping.out && vt_pass ping "$(grep round-trip /tmp/ping.out)" || vt_fail ping "$(tail -2 /tmp/ping.out | tr '\n' ' ')"
                    n=0; while [ "$(echoreps)" -lt 5 ] && [ $n -lt 900 ]; do sleep 0.1; n=$((n + 1)); done
                    [ "$(echoreps)" -ge 5 ] && vt_pass answered "$(echoreps) echo replies" || vt_fail answered "$(echoreps) echo replies"
                    """,
            };
            o.AddVhostUserNet(sample.SocketPaths[me], $"52:54:00:00:00:1{me}");
            return o;
        }

        using QemuGuest a = await QemuGuest.StartAsync(image, Guest(0, 1), TestContext.Current.CancellationToken);
        using QemuGuest b = await QemuGuest.StartAsync(image, Guest(1, 0), TestContext.Current.CancellationToken);
        GuestRunResult[] results = await Task.WhenAll(a.WaitForExitAsync(TestContext.Current.CancellationToken), b.WaitForExitAsync(TestContext.Current.CancellationToken));
        foreach (GuestRunResult r in results)
        {
            Report(watch, r, sample);
            Assert.True(r.Succeeded, r.Describe() + "\nsample:\n" + sample.Output);
            Assert.Equal(["ping", "answered"], r.Results.Select(x => x.Name));
        }

        Assert.Equal(0, await sample.StopAsync());
        for (int port = 0; port < 2; port++)
        {
            (long tx, long rx, _) = sample.Counters(port);
            Assert.True(tx >= 10 && rx >= 10, sample.Output);
        }
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task The_sink_completes_every_frame_a_guest_sends(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        var watch = Stopwatch.StartNew();
        using NetSample sample = NetSample.Start(1, "--mode", "sink");
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Timeout = TimeSpan.FromSeconds(120),
            // Echo requests for 5 s (no replies): far more frames than the TX ring holds, so the guest
            // stalls unless the sink completes them.
            Script = Prelude + """

                up 192.0.2.10
                arp -i eth0 -s 192.0.2.99 02:00:00:00:00:99
                t0=$(stat tx_packets)
                ping -q -i 0.005 -w 5 192.0.2.99 > /dev/null 2>&1
                sleep 0.5
                t1=$(stat tx_packets); e=$(stat tx_dropped)
                [ $((t1 - t0)) -ge 600 ] && vt_pass sent "$((t1 - t0)) frames, $e dropped" || vt_fail sent "$((t1 - t0)) frames, $e dropped"
                """,
        };
        options.AddVhostUserNet(sample.SocketPaths[0], "52:54:00:00:00:01");
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        Report(watch, r, sample);

        Assert.True(r.Succeeded, r.Describe() + "\nsample:\n" + sample.Output);
        Assert.Equal(0, await sample.StopAsync());
        (long tx, long rx, _) = sample.Counters(0);
        Assert.True(tx >= 600, sample.Output);
        Assert.Equal(0, rx);
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task The_source_fills_the_buffers_a_guest_posts(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        var watch = Stopwatch.StartNew();
        using NetSample sample = NetSample.Start(1, "--mode", "source", "--frame-size", "128");
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Timeout = TimeSpan.FromSeconds(120),
            Script = Prelude + """

                ip link set eth0 up
                sleep 0.5
                r0=$(stat rx_packets); b0=$(stat rx_bytes)
                sleep 1
                r1=$(stat rx_packets); b1=$(stat rx_bytes)
                [ $((r1 - r0)) -ge 1000 ] && vt_pass received "$((r1 - r0)) frames, $((b1 - b0)) bytes in 1 s" || vt_fail received "$((r1 - r0)) frames in 1 s"
                [ $(( (b1 - b0) / (r1 - r0 + 1) )) -ge 120 ] && vt_pass size "$(( (b1 - b0) / (r1 - r0) )) bytes per frame" || vt_fail size "$b0 $b1 $r0 $r1"
                ip link set eth0 down
                """,
        };
        options.AddVhostUserNet(sample.SocketPaths[0], "52:54:00:00:00:01");
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        Report(watch, r, sample);

        Assert.True(r.Succeeded, r.Describe() + "\nsample:\n" + sample.Output);
        Assert.Equal(0, await sample.StopAsync());
        (_, long rx, _) = sample.Counters(0);
        Assert.True(rx >= 1000, sample.Output);
    }

    private static void Report(Stopwatch watch, GuestRunResult r, NetSample sample)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"wall {watch.Elapsed.TotalSeconds:F1} s (qemu {r.Elapsed.TotalSeconds:F1} s); exit={r.ExitCode?.ToString() ?? "none"} timed-out={r.TimedOut}");
        foreach (GuestTestResult x in r.Results)
        {
            TestContext.Current.TestOutputHelper?.WriteLine($"  {x.Name} {x.Status} {x.Detail}");
        }

        TestContext.Current.TestOutputHelper?.WriteLine(sample.Output);
    }
}
