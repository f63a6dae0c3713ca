using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// The lifecycle harness itself (<see cref="GuestVm"/>): commands through the guest agent, a
/// reset, and a live migration between two QEMUs of each version, with no vhost-user device, so
/// a failure of the device tests is the device's and not the harness's.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class GuestVmTests
{
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Agent_runs_commands_across_a_reset_and_a_migration(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        QemuGuestOptions Options() => new() { MemoryMiB = 256, Qemu = qemu };
        using GuestVm vm = await GuestVm.StartAsync(Options(), ct);

        GuestCommandResult r = await vm.RunAsync("echo one; echo two >&2; printf 'no newline'; exit 3", cancellationToken: ct);
        Assert.Equal(3, r.ExitCode);
        Assert.Equal(["one", "two", "no newline"], r.Output);
        Assert.Equal("x y", (await vm.RunCheckedAsync("echo 'k=x y'\necho k=second", cancellationToken: ct)).Value("k"));

        // State in guest RAM (a tmpfs file) survives the migration; the uptime keeps counting.
        await vm.RunCheckedAsync("head -c 65536 /dev/urandom > /tmp/state; md5sum < /tmp/state > /tmp/state.md5", cancellationToken: ct);
        string before = (await vm.RunCheckedAsync("cut -d' ' -f1 /proc/uptime", cancellationToken: ct)).Text;
        await vm.MigrateAsync(Options(), cancellationToken: ct);
        await vm.RunCheckedAsync("md5sum < /tmp/state | cmp - /tmp/state.md5", cancellationToken: ct);
        string after = (await vm.RunCheckedAsync("cut -d' ' -f1 /proc/uptime", cancellationToken: ct)).Text;
        Assert.True(double.Parse(after, System.Globalization.CultureInfo.InvariantCulture) > double.Parse(before, System.Globalization.CultureInfo.InvariantCulture), vm.Describe());
        Assert.Single(vm.MigrationLog);

        await vm.ResetAsync(ct);
        Assert.Equal(2, vm.Boots);
        Assert.NotEqual(0, (await vm.RunAsync("test -e /tmp/state", cancellationToken: ct)).ExitCode);
        Assert.Equal(0, await vm.ShutdownAsync(ct));
    }
}
