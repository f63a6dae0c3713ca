using System.Security.Cryptography;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// Live migration of a QEMU guest whose disk is served by <c>vhost-user-blk</c>: the source QEMU
/// talks to one daemon, the destination QEMU to a second daemon on the same image file (on the
/// real disk), both with image locking on. QEMU turns dirty logging on at migration start, moves
/// the guest, and the destination daemon takes over the image when its rings start. QEMU 7.2's
/// own TCG migration bug (lost guest writes; with qemu-storage-daemon too) is kept away by the
/// harness's RAM size, and a run whose destination guest kernel crashed still runs again:
/// <see cref="Qemu72MigrationBug"/>.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlkMigrationTests
{
    private const int ChunkBytes = BlkWriter.ChunkBytes;
    private const int Chunks = BlkWriter.Chunks;

    /// <summary>The guest writes with O_DIRECT all through a migration, then reads every block back on the destination (caches dropped), and the host compares the image file.</summary>
    [Theory(Timeout = 2 * GuestCollection.TestTimeoutMs)] // room for Qemu72MigrationBug's attempts
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Writes_during_migration_all_reach_the_image(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        await Qemu72MigrationBug.RunAsync(qemu, async () =>
        {
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
            try
            {
                await BlkWriter.WaitForProgressAsync(vm, await BlkWriter.ProgressAsync(vm, ct), ct);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}\n--- source daemon ---\n{source.Output}\n--- destination daemon ---\n{destination.Output}", e);
            }

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
        });
    }

    /// <summary>
    /// The guest reads a 64 MiB disk once, chunk by chunk, through its page cache (buffered: the
    /// daemon writes the data straight into guest pages, which nothing else ever writes), from
    /// before the migration starts until after it ends, then checksums what it has cached on the
    /// destination. A page the daemon filled after the migration had copied it reaches the
    /// destination only through the dirty log. Under TCG here QEMU happens to send those pages
    /// again by itself (measured: with the blk sample's marks removed the data still arrives), so
    /// the test also reads how many page marks the source daemon made by the time its ring
    /// stopped: at least the pages read during the migration (docs/vm-lifecycle.md).
    /// </summary>
    [Theory(Timeout = 2 * GuestCollection.TestTimeoutMs)] // room for Qemu72MigrationBug's attempts
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Reads_during_migration_reach_the_destination_through_the_dirty_log(string qemuVersion)
    {
        const int ReadChunks = 1024;
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        await Qemu72MigrationBug.RunAsync(qemu, async () =>
        {
            using var dir = new TempDirectory("vhost-blk-migr-");
            string disk = dir.CreateFile("disk.img", ReadChunks * ChunkBytes);
            byte[] content = RandomNumberGenerator.GetBytes(ReadChunks * ChunkBytes);
            await File.WriteAllBytesAsync(disk, content, ct);
            string expected = Convert.ToHexStringLower(MD5.HashData(content));
            using SampleProcess source = StartDaemon(dir, "src.sock", disk);
            using SampleProcess destination = StartDaemon(dir, "dst.sock", disk, incoming: true);
            using GuestVm vm = await GuestVm.StartAsync(Options(qemu, source, ReadTestKernel), ct);
            await vm.RunCheckedAsync(WaitForDisk, cancellationToken: ct);

            // One pass, no cache dropped and no page freed: each cached page holds only what the
            // daemon wrote into it. The reader is one process (blkgen reads) when the guest has it
            // (fewer guest writes for QEMU 7.2's TCG migration bug to lose, from when it was taken
            // for page churn; docs/vm-lifecycle.md). It pauses 5 ms after each chunk, with
            // read-ahead off, so the read spans more than 5 s and the migration (1-2 s) falls inside it.
            await vm.RunCheckedAsync(
                $$"""
                echo 3 > /proc/sys/vm/drop_caches
                cat > /tmp/reader <<'R'
                command -v blkgen >/dev/null && exec blkgen reads /dev/vda {{ChunkBytes}} {{ReadChunks}} 5000 /tmp
                i=0
                while [ $i -lt {{ReadChunks}} ]; do
                  dd if=/dev/vda of=/dev/null bs={{ChunkBytes}} count=1 skip=$i 2>/dev/null || { echo failed > /tmp/reader.failed; exit 1; }
                  i=$((i + 1)); echo $i > /tmp/read.new; mv /tmp/read.new /tmp/read
                done
                R
                echo 0 > /tmp/read
                sh /tmp/reader > /tmp/reader.log 2>&1 &
                """,
                cancellationToken: ct);
            await WaitForChunks(vm, 48, ct);
            int atStart = int.Parse((await vm.RunCheckedAsync("cat /tmp/read", cancellationToken: ct)).Text, System.Globalization.CultureInfo.InvariantCulture);
            await vm.MigrateAsync(Options(qemu, destination, ReadTestKernel), cancellationToken: ct);
            string atSwitch = (await vm.RunCheckedAsync("cat /tmp/read", cancellationToken: ct)).Text;

            // What the page cache holds is what the daemon wrote into guest memory, part of it during
            // the migration. Checksum it without dropping it, then what the device has.
            GuestCommandResult r = await vm.RunCheckedAsync(
                $$"""
                while pidof dd blkgen >/dev/null || [ "$(cat /tmp/read)" != {{ReadChunks}} ]; do [ -e /tmp/reader.failed ] && break; sleep 0.1; done
                [ -e /tmp/reader.failed ] && { cat /tmp/reader.failed; exit 1; }
                echo cached=$(dd if=/dev/vda bs={{ChunkBytes}} count={{ReadChunks}} 2>/dev/null | md5sum | cut -c1-32)
                echo 3 > /proc/sys/vm/drop_caches
                echo device=$(dd if=/dev/vda bs={{ChunkBytes}} count={{ReadChunks}} iflag=direct 2>/dev/null | md5sum | cut -c1-32)
                """,
                TimeSpan.FromSeconds(180),
                ct);
            string everything = $"read {atSwitch} of {ReadChunks} chunks when the migration ended\n{r.Text}\n{vm.Describe()}\n--- source daemon ---\n{source.Output}\n--- destination daemon ---\n{destination.Output}";
            TestContext.Current.TestOutputHelper?.WriteLine(everything);
            Assert.True(int.Parse(atSwitch, System.Globalization.CultureInfo.InvariantCulture) < ReadChunks, $"the reader finished before the migration did: nothing was read during it\n{everything}");
            Assert.True(expected == r.Value("cached"), $"the guest's page cache differs from the disk after the migration: a page the daemon wrote was not in the dirty log\n{everything}");
            Assert.Equal(expected, r.Value("device"));

            // Each chunk read while logging was on is 16 pages the daemon marked (at least half of the
            // chunks read during the migration: the rest may have been read ahead before it began).
            var marks = System.Text.RegularExpressions.Regex.Match(source.Output, @"while dirty logging is on; (\d+) page marks");
            Assert.True(marks.Success, "the source daemon did not log its dirty-log marks at the end of the migration\n" + everything);
            long marked = long.Parse(marks.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            int readDuring = int.Parse(atSwitch, System.Globalization.CultureInfo.InvariantCulture) - atStart;
            Assert.True(marked >= readDuring * (ChunkBytes / 4096) / 2, $"{marked} page marks for {readDuring} chunks read during the migration\n{everything}");
            Assert.DoesNotContain("vhost", vm.QemuErrors, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("fail:", source.Output + destination.Output, StringComparison.Ordinal);
            Assert.Equal(0, await vm.ShutdownAsync(ct));
        });
    }

    private static async Task WaitForChunks(GuestVm vm, int chunks, CancellationToken ct)
    {
        for (int i = 0; i < 600; i++)
        {
            string text = (await vm.RunCheckedAsync("cat /tmp/read", cancellationToken: ct)).Text;
            if (int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) >= chunks)
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        throw new TimeoutException("the reader did not get going\n" + vm.Describe());
    }

    private const string WaitForDisk = BlkWriter.WaitForDisk;

    internal static SampleProcess StartDaemon(TempDirectory dir, string socket, string disk, bool incoming = false, bool postcopy = false)
    {
        var args = new List<string> { "--socket-path", Path.Combine(dir.Path, socket), "--blk-file", disk, "--direct", "--verbose" };
        if (incoming)
        {
            args.Add("--incoming");
        }

        if (postcopy)
        {
            args.Add("--postcopy");
        }

        return SampleProcess.Start("vhost-user-blk", args);
    }

    /// <summary>
    /// Debian's kernel zeroes every page it allocates (init_on_alloc): a page-cache page the CPU
    /// has just zeroed is dirty for QEMU anyway, which would hide most missing marks from the
    /// read test. Off, the daemon's write is the only write to such a page.
    /// </summary>
    internal static readonly string[] ReadTestKernel = ["init_on_alloc=0"];

    internal static QemuGuestOptions Options(QemuBinary qemu, SampleProcess daemon, string[]? kernelArguments = null)
    {
        var o = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
        foreach (string a in kernelArguments ?? [])
        {
            o.KernelArguments.Add(a);
        }

        o.AddVhostUserDevice("vhost-user-blk-pci", daemon.SocketPath!, "num-queues=1");
        return o;
    }

    internal static string Md5(string path)
    {
        using FileStream f = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(f));
    }
}
