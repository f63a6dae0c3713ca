using System.Security.Cryptography;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// Live migration of a QEMU guest whose disk is served by <c>vhost-user-blk</c>: the source QEMU
/// talks to one daemon, the destination QEMU to a second daemon on the same image file (on the
/// real disk), both with image locking on. QEMU turns dirty logging on at migration start, moves
/// the guest, and the destination daemon takes over the image when its rings start.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlkMigrationTests
{
    private const int ChunkBytes = BlkWriter.ChunkBytes;
    private const int Chunks = BlkWriter.Chunks;

    /// <summary>The guest writes with O_DIRECT all through a migration, then reads every block back on the destination (caches dropped), and the host compares the image file.</summary>
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Writes_during_migration_all_reach_the_image(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using var dir = new TempDirectory("vhost-blk-mig-");
        string disk = dir.CreateFile("disk.img", Chunks * ChunkBytes);
        using SampleProcess source = StartDaemon(dir, "src.sock", disk);
        using SampleProcess destination = StartDaemon(dir, "dst.sock", disk, incoming: true);
        using GuestVm vm = await GuestVm.StartAsync(Options(qemu, source), ct);
        await vm.RunCheckedAsync(WaitForDisk, cancellationToken: ct);

        await BlkWriter.StartAsync(vm, ct);

        // Migrate while the writer is in its second pass or later (so a lost write shows).
        await BlkWriter.WaitForPassAsync(vm, 1, ct);
        await vm.MigrateAsync(Options(qemu, destination), cancellationToken: ct);
        await BlkWriter.WaitForProgressAsync(vm, await BlkWriter.ProgressAsync(vm, ct), ct);
        GuestCommandResult verify = await BlkWriter.StopAndVerifyAsync(vm, ct);
        Assert.True(verify.Value("same") == "yes", $"the disk differs from what the guest wrote ({verify.Text})\n{vm.Describe()}\n{source.Output}\n{destination.Output}");
        string everything = $"{verify.Text}\n{vm.Describe()}\n--- source daemon ---\n{source.Output}\n--- destination daemon ---\n{destination.Output}";
        TestContext.Current.TestOutputHelper?.WriteLine(everything);
        Assert.DoesNotContain("vhost", vm.QemuErrors, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("fail:", source.Output + destination.Output, StringComparison.Ordinal);
        Assert.Equal(0, await vm.ShutdownAsync(ct));

        // The handover: the source gave write access up when its rings stopped, the destination
        // took it when its rings started, and a third writer is still refused.
        Assert.Contains("image inactive", source.Output, StringComparison.Ordinal);
        Assert.Contains("image active", destination.Output, StringComparison.Ordinal);
        (int third, string thirdOut, string thirdErr) = ChildProcess.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "vhost-user-blk.dll"), "--socket-path", Path.Combine(dir.Path, "third.sock"), "--blk-file", disk], TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, third);
        Assert.Contains("image is locked", thirdOut + thirdErr, StringComparison.Ordinal);

        // The image file holds it too, once the destination daemon is gone.
        destination.Kill();
        source.Kill();
        Assert.Equal(verify.Value("expect"), Md5(disk));
        Assert.DoesNotContain("Unhandled", source.Output + destination.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// The guest reads the disk through its page cache (buffered: the daemon writes the data
    /// straight into guest pages) over and over while it migrates, then checksums what it has
    /// cached on the destination. A page the daemon wrote after the migration had copied it only
    /// reaches the destination through the dirty log: this is what proves the log.
    /// </summary>
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Reads_during_migration_reach_the_destination_through_the_dirty_log(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using var dir = new TempDirectory("vhost-blk-migr-");
        string disk = dir.CreateFile("disk.img", Chunks * ChunkBytes);
        byte[] content = RandomNumberGenerator.GetBytes(Chunks * ChunkBytes);
        await File.WriteAllBytesAsync(disk, content, ct);
        string expected = Convert.ToHexStringLower(MD5.HashData(content));
        using SampleProcess source = StartDaemon(dir, "src.sock", disk);
        using SampleProcess destination = StartDaemon(dir, "dst.sock", disk, incoming: true);
        using GuestVm vm = await GuestVm.StartAsync(Options(qemu, source), ct);
        await vm.RunCheckedAsync(WaitForDisk, cancellationToken: ct);

        // Between rounds the cached pages are freed and (QEMU 10 only) the CPU zeroes them (a
        // tmpfs file taken and given back), so the pages the next round reads into hold zeroes
        // on the way in: a page whose new data did not reach the destination shows as zeroes,
        // not as a copy of the same block from an earlier round. Without the log, that guest
        // panics or hangs on the destination; with it, everything matches. QEMU 7.2's TCG
        // migration itself corrupts a guest that churns pages like that, with no vhost device
        // at all (docs/vm-lifecycle.md: 5 of 11 runs), so on 7.2 the rounds only drop the cache.
        string zeroPages = qemu.Version.Major >= 10 ? $"head -c {Chunks * ChunkBytes * 3 / 2} /dev/zero > /tmp/fill; rm -f /tmp/fill" : ":";
        await vm.RunCheckedAsync(
            $$"""
            cat > /tmp/reader <<'R'
            n=0
            while [ ! -e /tmp/stop ]; do
              echo 1 > /proc/sys/vm/drop_caches
              {{zeroPages}}
              dd if=/dev/vda of=/dev/null bs={{ChunkBytes}} count={{Chunks}} 2>/dev/null || { echo failed > /tmp/reader.failed; exit 1; }
              n=$((n + 1)); echo $n > /tmp/rounds
            done
            R
            sh /tmp/reader > /tmp/reader.log 2>&1 &
            """,
            cancellationToken: ct);
        await WaitForRounds(vm, 2, ct);
        await vm.MigrateAsync(Options(qemu, destination), cancellationToken: ct);

        // Stop reading; what the page cache holds now is what the daemon wrote into guest memory
        // (the last rounds, some of them during the migration). Checksum it without dropping it.
        GuestCommandResult r = await vm.RunCheckedAsync(
            $$"""
            touch /tmp/stop; while pidof dd >/dev/null; do sleep 0.1; done; sleep 0.3
            [ -e /tmp/reader.failed ] && { cat /tmp/reader.failed; exit 1; }
            echo rounds=$(cat /tmp/rounds)
            echo cached=$(dd if=/dev/vda bs={{ChunkBytes}} count={{Chunks}} 2>/dev/null | md5sum | cut -c1-32)
            echo 3 > /proc/sys/vm/drop_caches
            echo device=$(dd if=/dev/vda bs={{ChunkBytes}} count={{Chunks}} iflag=direct 2>/dev/null | md5sum | cut -c1-32)
            """,
            TimeSpan.FromSeconds(120),
            ct);
        string everything = $"{r.Text}\n{vm.Describe()}\n--- source daemon ---\n{source.Output}\n--- destination daemon ---\n{destination.Output}";
        TestContext.Current.TestOutputHelper?.WriteLine(everything);
        Assert.True(expected == r.Value("cached"), $"the guest's page cache differs from the disk after the migration: a page the daemon wrote was not in the dirty log\n{everything}");
        Assert.Equal(expected, r.Value("device"));
        Assert.DoesNotContain("vhost", vm.QemuErrors, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("fail:", source.Output + destination.Output, StringComparison.Ordinal);
        Assert.Equal(0, await vm.ShutdownAsync(ct));
    }

    private static async Task WaitForRounds(GuestVm vm, int rounds, CancellationToken ct)
    {
        for (int i = 0; i < 600; i++)
        {
            string text = (await vm.RunCheckedAsync("cat /tmp/rounds 2>/dev/null || echo 0", cancellationToken: ct)).Text;
            if (int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) >= rounds)
            {
                return;
            }

            await Task.Delay(200, ct);
        }

        throw new TimeoutException("the reader did not get going\n" + vm.Describe());
    }

    private const string WaitForDisk = BlkWriter.WaitForDisk;

    private static SampleProcess StartDaemon(TempDirectory dir, string socket, string disk, bool incoming = false)
    {
        var args = new List<string> { "--socket-path", Path.Combine(dir.Path, socket), "--blk-file", disk, "--direct" };
        if (incoming)
        {
            args.Add("--incoming");
        }

        return SampleProcess.Start("vhost-user-blk", args);
    }

    private static QemuGuestOptions Options(QemuBinary qemu, SampleProcess daemon)
    {
        var o = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
        o.AddVhostUserDevice("vhost-user-blk-pci", daemon.SocketPath!, "num-queues=1");
        return o;
    }

    private static string Md5(string path)
    {
        using FileStream f = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(f));
    }
}
