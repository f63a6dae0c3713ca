using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;
using Vhost.IntegrationTests.UserNet;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// Live migration of QEMU guests whose NIC is served by <c>vhost-user-net</c>: a guest pinging the
/// responder at 10 per second keeps getting replies across the migration (the destination QEMU
/// talks to a second responder), and in switch mode two guests keep pinging each other while
/// one of them moves to another port of the same switch (SEND_RARP tells the switch where it went).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed partial class NetMigrationTests
{
    private const string ResponderIp = "192.0.2.1";

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public Task A_guest_pinging_the_responder_keeps_its_replies_across_a_migration(string qemuVersion)
        => PingTheResponderThroughAMigrationAsync(qemuVersion, postcopy: false, TestContext.Current.CancellationToken);

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Two_guests_on_the_switch_keep_pinging_while_one_moves_to_another_port(string qemuVersion)
    {
        // Guest A on port 0 pings guest B on port 1; B migrates to a QEMU on port 2 of the same
        // switch. SEND_RARP from B's destination tells the switch that B's MAC is now behind port 2.
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using NetSample sw = NetSample.Start(3, "--mode", "switch");
        using GuestVm a = await GuestVm.StartAsync(Options(qemu, sw.SocketPaths[0], "52:54:00:00:00:0a"), ct);
        using GuestVm b = await GuestVm.StartAsync(Options(qemu, sw.SocketPaths[1], "52:54:00:00:00:0b"), ct);
        await a.RunCheckedAsync("ip link set eth0 up && ip addr add 192.0.2.10/24 dev eth0", cancellationToken: ct);
        await b.RunCheckedAsync("ip link set eth0 up && ip addr add 192.0.2.11/24 dev eth0", cancellationToken: ct);
        await a.RunCheckedAsync("ping -c 2 -w 30 192.0.2.11", TimeSpan.FromSeconds(40), ct);
        await a.RunCheckedAsync("ping -i 0.1 192.0.2.11 > /tmp/ping.out 2>&1 & echo $! > /tmp/ping.pid", cancellationToken: ct);
        await Task.Delay(2000, ct);
        JsonObject migration = await b.MigrateAsync(Options(qemu, sw.SocketPaths[2], "52:54:00:00:00:0b"), cancellationToken: ct);
        await a.RunCheckedAsync("sleep 3", cancellationToken: ct);
        GuestCommandResult stats = await a.RunCheckedAsync("kill -INT $(cat /tmp/ping.pid); sleep 0.5; tail -3 /tmp/ping.out", cancellationToken: ct);
        GuestCommandResult back = await b.RunAsync("ping -c 3 -w 20 192.0.2.10", TimeSpan.FromSeconds(30), ct);
        string everything = $"{stats.Text}\n{back.Text}\n--- A ---\n{a.Describe()}\n--- B ---\n{b.Describe()}\n--- switch ---\n{sw.Output}";
        TestContext.Current.TestOutputHelper?.WriteLine(everything);

        (int sent, int got) = PingStats(stats.Text);
        Assert.True(sent >= 40, everything);
        int allowed = AllowedLoss(migration);
        Assert.True(got >= sent - allowed, $"{sent - got} of {sent} pings lost, {allowed} allowed\n{everything}");
        Assert.Equal(0, back.ExitCode);
        Assert.DoesNotContain("vhost_", a.QemuErrors + b.QemuErrors, StringComparison.Ordinal);
        Assert.DoesNotContain("fails to broadcast fake RARP", b.QemuErrors, StringComparison.Ordinal);
        Assert.Equal(0, await a.ShutdownAsync(ct));
        Assert.Equal(0, await b.ShutdownAsync(ct));
        Assert.Equal(0, await sw.StopAsync());
        Assert.Matches(@"port 2: .* [1-9]\d* migration announcements", sw.Output);
    }

    /// <summary>
    /// Postcopy live migration (<c>postcopy-ram</c>, <c>migrate-start-postcopy</c> at once, the
    /// bandwidth capped, so the guest runs on the destination while its memory still arrives) of
    /// a guest pinging the responder with 1400-byte frames at 10 per second: both responders run
    /// with <c>--postcopy</c>, so the destination daemon hands QEMU a userfaultfd, answers the
    /// memory table with its mapping addresses and registers them; the pings go on through it.
    /// How many of the daemon's faults QEMU served is printed, not asserted: in the runs measured
    /// it was 0 (every page the net daemon touched had arrived or had been pulled in by the guest
    /// first); the daemon's fault path with QEMU serving it is <see cref="BlkPostcopyTests"/>'s.
    /// </summary>
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("10")]
    [InlineData("7.2")]
    public Task A_guest_pinging_the_responder_keeps_its_replies_across_a_postcopy_migration(string qemuVersion)
        => PingTheResponderThroughAMigrationAsync(qemuVersion, postcopy: true, TestContext.Current.CancellationToken);

    /// <summary>
    /// A guest pings the responder at 10 per second while it migrates to a QEMU on a second
    /// responder; the replies go on, a few may be lost at the switch-over. With
    /// <paramref name="postcopy"/>: 1400-byte pings, both responders <c>--postcopy</c>, and a
    /// postcopy migration with the bandwidth capped.
    /// </summary>
    private static async Task PingTheResponderThroughAMigrationAsync(string qemuVersion, bool postcopy, CancellationToken ct)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using var dir = new TempDirectory("vhost-net-mig-");
        string[] responder = ["--mode", "responder", "--ip", ResponderIp, "--mac", "02:00:00:00:00:fe"];
        if (postcopy)
        {
            responder = [.. responder, "--postcopy", "--verbose"];
        }

        using NetSample source = NetSample.Start(1, responder);
        using NetSample destination = NetSample.Start(1, responder);
        using GuestVm vm = await GuestVm.StartAsync(Options(qemu, source.SocketPaths[0], "52:54:00:00:00:01"), ct);
        await vm.RunCheckedAsync($"ip link set eth0 up && ip addr add 192.0.2.10/24 dev eth0 && ping -c 2 -w 20 {ResponderIp}", TimeSpan.FromSeconds(30), ct);
        await vm.RunCheckedAsync($"ping -i 0.1 {(postcopy ? "-s 1400 " : string.Empty)}{ResponderIp} > /tmp/ping.out 2>&1 & echo $! > /tmp/ping.pid", cancellationToken: ct);
        await Task.Delay(2000, ct);

        QemuGuestOptions target = Options(qemu, destination.SocketPaths[0], "52:54:00:00:00:01");
        string trace = Path.Combine(dir.Path, "dst-trace.log");
        JsonObject migration;
        if (postcopy)
        {
            target.AddArguments("-D", trace, "-trace", "vhost_user_postcopy_fault_handler_found");
            var slow = new JsonObject { ["max-bandwidth"] = 24L << 20, ["max-postcopy-bandwidth"] = 12L << 20 };
            migration = await vm.MigrateAsync(target, parameters: slow, postcopy: true, cancellationToken: ct);
        }
        else
        {
            migration = await vm.MigrateAsync(target, cancellationToken: ct);
        }

        await vm.RunCheckedAsync("sleep 3", cancellationToken: ct);
        GuestCommandResult stats = await vm.RunCheckedAsync("kill -INT $(cat /tmp/ping.pid); sleep 0.5; tail -3 /tmp/ping.out", cancellationToken: ct);
        int served = File.Exists(trace) ? File.ReadLines(trace).Count(l => l.Contains("vhost_user_postcopy_fault_handler_found", StringComparison.Ordinal)) : 0;
        string everything = $"{stats.Text}\n{migration.ToJsonString()}\n{(postcopy ? $"faults the destination QEMU served for the daemon: {served}\n" : string.Empty)}{vm.Describe()}\n--- source ---\n{source.Output}\n--- destination ---\n{destination.Output}";
        TestContext.Current.TestOutputHelper?.WriteLine(everything);

        // 10 per second for about 5 s or more: the replies go on after the switch-over, a few may be lost in it.
        (int sent, int got) = PingStats(stats.Text);
        Assert.True(sent >= 40, everything);
        int allowed = AllowedLoss(migration);
        Assert.True(got >= sent - allowed, $"{sent - got} of {sent} pings lost, {allowed} allowed\n{everything}");
        if (postcopy)
        {
            Assert.True((long?)migration["ram"]?["postcopy-bytes"] > 0, "the migration did not run in postcopy\n" + everything);
            Assert.Contains("registered for missing-page faults", destination.Output, StringComparison.Ordinal);
            Assert.Contains("postcopy: ended", destination.Output, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("fails to broadcast fake RARP", vm.QemuErrors, StringComparison.Ordinal);
        Assert.DoesNotContain("vhost_", vm.QemuErrors, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", source.Output + destination.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled", source.Output + destination.Output, StringComparison.Ordinal);
        Assert.Equal(0, await vm.ShutdownAsync(ct));
        Assert.Equal(0, await destination.StopAsync());

        // About 3 s or more on the destination at 10 per second: its responder answered them.
        Assert.True(destination.Counters(0).Rx >= 20, $"the destination responder answered too few pings\n{destination.Output}");
    }

    internal static QemuGuestOptions Options(QemuBinary qemu, string socket, string mac)
    {
        var o = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
        o.AddVhostUserNet(socket, mac);
        return o;
    }

    /// <summary>
    /// Pings a migration may lose at 10 per second: one per 100 ms the guest was stopped (QEMU's
    /// own downtime figure; TCG sometimes needs 500 ms against the 300 ms asked), and two for the
    /// announcement reaching the switch and the reply in flight at the switch-over.
    /// </summary>
    internal static int AllowedLoss(JsonObject migration)
    {
        long downtime = (long?)migration["downtime"] ?? throw new InvalidOperationException("QEMU reported no downtime: " + migration.ToJsonString());
        return (int)((downtime + 99) / 100) + 2;
    }

    internal static (int Sent, int Received) PingStats(string text)
    {
        Match m = PingSummary().Match(text);
        Assert.True(m.Success, "no ping summary in: " + text);
        return (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) packets received")]
    private static partial Regex PingSummary();
}
