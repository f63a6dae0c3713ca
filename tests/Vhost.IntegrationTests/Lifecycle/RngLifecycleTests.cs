using System.Text.Json.Nodes;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// <c>vhost-user-rng</c> through a VM's life with QEMU: pause and resume while the guest reads
/// <c>/dev/hwrng</c>, a reset, and a migration attempt (QEMU marks vhost-user-rng unmigratable: the
/// migration is refused up front and the guest keeps running on the source).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class RngLifecycleTests
{
    private const string Read = "dd if=/dev/hwrng bs=4096 count=4 2>/dev/null | od -An -tx1 | tr -s ' \\n' '\\n' | sort -u | wc -l";

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Pause_reset_and_a_refused_migration_keep_the_rng_working(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using var dir = new TempDirectory("vhost-rng-life-");
        string socket = Path.Combine(dir.Path, "rng.sock");
        using SampleProcess rng = SampleProcess.Start("vhost-user-rng", ["--socket-path", socket]);
        var options = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
        options.AddVhostUserDevice("vhost-user-rng-pci", socket);
        using GuestVm vm = await GuestVm.StartAsync(options, ct);
        await AssertRandomAsync(vm, ct);

        await vm.RunCheckedAsync("dd if=/dev/hwrng of=/tmp/bg bs=4096 count=64 2>/dev/null &", cancellationToken: ct);
        await vm.PauseAsync(ct);
        await Task.Delay(1000, ct);
        await vm.ResumeAsync(ct);
        await vm.RunCheckedAsync("wait; while pidof dd >/dev/null; do sleep 0.1; done; [ $(wc -c < /tmp/bg) = 262144 ]", TimeSpan.FromSeconds(60), ct);
        await AssertRandomAsync(vm, ct);

        await vm.ResetAsync(ct);
        await AssertRandomAsync(vm, ct);

        // QEMU refuses to migrate a guest with vhost-user-rng ("State blocked by non-migratable device"), before anything
        // reaches the back-end; the guest goes on.
        var refused = await Assert.ThrowsAsync<QmpException>(() => vm.Qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = "unix:" + Path.Combine(dir.Path, "nowhere.sock") }, ct));
        Assert.Contains("non-migratable device", refused.Description, StringComparison.Ordinal);
        await AssertRandomAsync(vm, ct);

        Assert.DoesNotContain("vhost_", vm.QemuErrors, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", rng.Output, StringComparison.Ordinal);
        Assert.Equal(0, await vm.ShutdownAsync(ct));
    }

    private static async Task AssertRandomAsync(GuestVm vm, CancellationToken ct)
    {
        string distinct = (await vm.RunCheckedAsync("for i in $(seq 50); do grep -q virtio_rng /sys/class/misc/hw_random/rng_current && break; sleep 0.1; done; " + Read, TimeSpan.FromSeconds(30), ct)).Text;
        Assert.True(int.Parse(distinct, System.Globalization.CultureInfo.InvariantCulture) > 200, $"{distinct} distinct byte values in 16 KiB from /dev/hwrng\n{vm.Describe()}");
    }
}
