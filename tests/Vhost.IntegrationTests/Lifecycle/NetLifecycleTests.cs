using System.Text.Json.Nodes;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.UserNet;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// The rest of a VM's life with a <c>vhost-user-net</c> NIC, driven by QEMU through QMP (one
/// boot per QEMU version): pause and resume while the guest pings the responder, a guest reset,
/// and a hot-unplug and replug of the NIC (device, netdev and chardev); and multiqueue: the guest
/// changes its queue pairs with <c>ethtool -L</c> while traffic runs, notification-driven and polling.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class NetLifecycleTests
{
    private const string Responder = "192.0.2.1";
    private const string Mac = "52:54:00:00:00:21";

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Pause_reset_and_replug_keep_the_nic_working(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using NetSample sample = NetSample.Start(1, "--mode", "responder", "--ip", Responder, "--mac", "02:00:00:00:00:fe");
        var options = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
        options.AddArguments("-device", "pcie-root-port,id=rp1,chassis=1,slot=1");
        string netdev = options.AddVhostUserNet(sample.SocketPaths[0], Mac, "id=nic0,bus=rp1");
        using GuestVm vm = await GuestVm.StartAsync(options, ct);
        try
        {
            await UpAndPing(vm, ct);

            // Pause and resume while pinging at 10/s: the pings sent around the pause are answered.
            await vm.RunCheckedAsync($"ping -i 0.1 {Responder} > /tmp/ping.out 2>&1 & echo $! > /tmp/ping.pid", cancellationToken: ct);
            await Task.Delay(1500, ct);
            await vm.PauseAsync(ct);
            await Task.Delay(1500, ct);
            await vm.ResumeAsync(ct);
            await vm.RunCheckedAsync("sleep 2", cancellationToken: ct);
            GuestCommandResult stats = await vm.RunCheckedAsync("kill -INT $(cat /tmp/ping.pid); sleep 0.5; tail -3 /tmp/ping.out", cancellationToken: ct);
            (int sent, int got) = NetMigrationTests.PingStats(stats.Text);
            Assert.True(sent >= 25 && got >= sent - 3, $"{sent - got} of {sent} pings lost across a pause\n{stats.Text}\n{vm.Describe()}\n{sample.Output}");

            // A guest reset: the driver starts over, the rings are set up again.
            await vm.ResetAsync(ct);
            await UpAndPing(vm, ct);

            // Hot-unplug the NIC, remove its netdev (which closes the vhost-user connection), then
            // add a chardev, a netdev and the NIC back: the guest gets a working NIC again.
            await vm.UnplugAsync("nic0", cancellationToken: ct);
            await vm.Qmp.ExecuteAsync("netdev_del", new JsonObject { ["id"] = netdev }, ct);
            Assert.True(await WaitForAsync(() => sample.Output.Contains("front-end disconnected (connection 1)", StringComparison.Ordinal), ct), "the back-end did not see the front-end leave\n" + sample.Output);
            await vm.Qmp.ExecuteAsync("chardev-add", new JsonObject
            {
                ["id"] = "vu-replug",
                ["backend"] = new JsonObject
                {
                    ["type"] = "socket",
                    ["data"] = new JsonObject { ["addr"] = new JsonObject { ["type"] = "unix", ["data"] = new JsonObject { ["path"] = sample.SocketPaths[0] } }, ["server"] = false },
                },
            }, ct);
            await vm.Qmp.ExecuteAsync("netdev_add", new JsonObject { ["type"] = "vhost-user", ["id"] = "net-replug", ["chardev"] = "vu-replug" }, ct);
            await vm.Qmp.ExecuteAsync("device_add", new JsonObject { ["driver"] = "virtio-net-pci", ["netdev"] = "net-replug", ["mac"] = Mac, ["vectors"] = 0, ["id"] = "nic1", ["bus"] = "rp1" }, ct);
            await vm.RunCheckedAsync("for i in $(seq 100); do [ -e /sys/class/net/eth0 ] && exit 0; sleep 0.1; done; exit 1", cancellationToken: ct);
            await UpAndPing(vm, ct);

            Assert.DoesNotContain("vhost_", vm.QemuErrors, StringComparison.Ordinal);
            Assert.DoesNotContain("falling back", vm.QemuErrors, StringComparison.Ordinal);
            Assert.DoesNotContain("fail:", sample.Output, StringComparison.Ordinal);
            Assert.Equal(0, await vm.ShutdownAsync(ct));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- sample ---\n{sample.Output}", e);
        }
    }

    /// <summary>
    /// A two-vCPU guest with two queue pairs changes to one pair and back with <c>ethtool -L</c>
    /// while pings run on both vCPUs (XPS maps each vCPU to its own TX queue): QEMU turns the
    /// change into SET_VRING_ENABLE for the second pair, and the pings keep being answered.
    /// </summary>
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2", false)]
    [InlineData("7.2", true)]
    [InlineData("10", false)]
    [InlineData("10", true)]
    public async Task Ethtool_changes_the_queue_pairs_while_traffic_runs(string qemuVersion, bool poll)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        string[] args = ["--mode", "responder", "--ip", Responder, "--mac", "02:00:00:00:00:fe", "--num-queues", "2", .. poll ? new[] { "--poll", "200000" } : []];
        using NetSample sample = NetSample.Start(1, args);
        var options = new QemuGuestOptions { MemoryMiB = 256, Cpus = 2, Qemu = qemu };
        options.AddVhostUserNet(sample.SocketPaths[0], Mac, "mq=on", queues: 2);
        using GuestVm vm = await GuestVm.StartAsync(options, ct);
        try
        {
            await UpAndPing(vm, ct);
            GuestCommandResult channels = await vm.RunCheckedAsync("ethtool -l eth0", cancellationToken: ct);
            Assert.Contains("Combined:\t2", channels.Text, StringComparison.Ordinal);

            // Pings on both vCPUs all along; the pair count goes 2 -> 1 -> 2 under them.
            await vm.RunCheckedAsync(
                $"""
                for c in 0 1; do taskset -c $c ping -i 0.1 {Responder} > /tmp/ping$c.out 2>&1 & echo $! > /tmp/ping$c.pid; done
                """,
                cancellationToken: ct);
            await Task.Delay(1500, ct);
            await vm.RunCheckedAsync("ethtool -L eth0 combined 1 && ethtool -l eth0 | grep -A4 Current | grep -q 'Combined:\t1'", cancellationToken: ct);
            await vm.RunCheckedAsync("sleep 2", cancellationToken: ct);
            await vm.RunCheckedAsync("ethtool -L eth0 combined 2 && ethtool -l eth0 | grep -A4 Current | grep -q 'Combined:\t2'", cancellationToken: ct);
            await vm.RunCheckedAsync("sleep 2", cancellationToken: ct);
            foreach (int c in new[] { 0, 1 })
            {
                GuestCommandResult stats = await vm.RunCheckedAsync($"kill -INT $(cat /tmp/ping{c}.pid); sleep 0.5; tail -3 /tmp/ping{c}.out", cancellationToken: ct);
                (int sent, int got) = NetMigrationTests.PingStats(stats.Text);
                Assert.True(sent >= 40 && got >= sent - 3, $"vCPU {c}: {sent - got} of {sent} pings lost while the queue pairs changed\n{stats.Text}\n{vm.Describe()}\n{sample.Output}");
            }

            // After the change back, each vCPU's TX queue is served again.
            foreach (int c in new[] { 0, 1 })
            {
                await vm.RunCheckedAsync($"taskset -c {c} ping -c 3 -i 0.2 -w 20 {Responder}", TimeSpan.FromSeconds(30), ct);
            }

            Assert.DoesNotContain("vhost_", vm.QemuErrors, StringComparison.Ordinal);
            Assert.DoesNotContain("fail:", sample.Output, StringComparison.Ordinal);
            Assert.Equal(0, await vm.ShutdownAsync(ct));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- sample ---\n{sample.Output}", e);
        }
    }

    private static async Task UpAndPing(GuestVm vm, CancellationToken ct)
        => await vm.RunCheckedAsync($"ip link set eth0 up && ip addr add 192.0.2.10/24 dev eth0 && ping -c 3 -i 0.2 -w 30 {Responder}", TimeSpan.FromSeconds(40), ct);

    internal static async Task<bool> WaitForAsync(Func<bool> condition, CancellationToken ct)
    {
        for (int i = 0; i < 150; i++)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(100, ct);
        }

        return condition();
    }
}
