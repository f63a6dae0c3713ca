using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Samples;

/// <summary>The <c>vhost-user-rng</c> sample served to a real QEMU guest: the guest's <c>/dev/hwrng</c> is the virtio-rng device.</summary>
[Collection(GuestCollection.Name)]
public sealed class RngSampleTests
{
    private const string Sample = "vhost-user-rng";

    private const string Script = """
        . /run/vhosttest/lib.sh
        for i in $(seq 50); do grep -q virtio /sys/class/misc/hw_random/rng_current 2>/dev/null && break; sleep 0.1; done
        vt_pass rng-current "$(cat /sys/class/misc/hw_random/rng_current)"
        t0=$(vt_uptime)
        dd if=/dev/hwrng of=/tmp/r bs=1024 count=$RNG_KIB 2>/dev/null
        t1=$(vt_uptime)
        vt_pass rng-read "$(wc -c < /tmp/r)"
        vt_pass rng-seconds "$(awk "BEGIN { print $t1 - $t0 }")"
        vt_pass rng-distinct "$(od -An -v -tx1 /tmp/r | tr -s ' ' '\n' | grep . | sort -u | wc -l)"
        dd if=/dev/hwrng of=/tmp/r2 bs=1024 count=1 2>/dev/null
        head -c 1024 /tmp/r > /tmp/r1
        if cmp -s /tmp/r1 /tmp/r2; then vt_fail rng-fresh "two reads returned the same bytes"; else vt_pass rng-fresh "two reads differ"; fi
        """;

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Guest_reads_random_bytes_from_hwrng(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        GuestRunResult r = await RunAsync(qemu, rateLimit: 0, kib: 64, TestContext.Current.CancellationToken);
        Assert.Equal("65536", r.Find("rng-read")?.Detail);

        // 64 KiB of random bytes contain every byte value.
        Assert.Equal("256", r.Find("rng-distinct")?.Detail);
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Rate_limit_bounds_the_bytes_per_second(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        // The bucket starts with one second's worth (8 KiB): 24 KiB take at least two more seconds.
        GuestRunResult r = await RunAsync(qemu, rateLimit: 8192, kib: 24, TestContext.Current.CancellationToken);
        Assert.Equal("24576", r.Find("rng-read")?.Detail);
        double seconds = double.Parse(r.Find("rng-seconds")!.Detail, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(seconds, 1.7, 20);
    }

    private static async Task<GuestRunResult> RunAsync(QemuBinary qemu, long rateLimit, int kib, CancellationToken cancellationToken)
    {
        await GuestImage.GetOrSkipAsync(cancellationToken);
        using var dir = new TempDirectory("vhost-rng-");
        string socket = Path.Combine(dir.Path, "rng.sock");
        using SampleProcess rng = SampleProcess.Start(Sample, ["--socket-path", socket, "--rate-limit", rateLimit.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var options = new QemuGuestOptions { MemoryMiB = 256, Script = Script, Qemu = qemu };
        options.Environment["RNG_KIB"] = kib.ToString(System.Globalization.CultureInfo.InvariantCulture);
        options.AddVhostUserDevice("vhost-user-rng-pci", socket);
        GuestRunResult r = await QemuGuest.RunAsync(options, cancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine($"guest {r.Elapsed.TotalSeconds:F1} s; read took {r.Find("rng-seconds")?.Detail} s");
        Assert.True(r.Succeeded, r.Describe() + "\n" + rng.Output);
        Assert.StartsWith("virtio_rng", r.Find("rng-current")?.Detail, StringComparison.Ordinal);
        return r;
    }
}
