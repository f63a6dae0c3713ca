using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// Postcopy live migration of a guest whose disk is served by <c>vhost-user-blk --postcopy</c>:
/// QEMU's <c>postcopy-ram</c> on both sides, <c>migrate-start-postcopy</c> right after the
/// migration starts, with the bandwidth capped so most of the guest's memory is still on the
/// source when the destination runs it. The guest writes (O_DIRECT) and reads (through its page
/// cache, caches dropped between passes, so the daemon fills pages the destination does not have
/// yet) all the while; the destination daemon's touches of missing pages fault into its
/// userfaultfd, which the destination QEMU reads and resolves (its trace counts them). Afterwards
/// every read pass matched the disk and every write reached the image.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlkPostcopyTests
{
    private const int ChunkBytes = BlkWriter.ChunkBytes;
    private const int Chunks = BlkWriter.Chunks;

    /// <summary>Postcopy with the guest writing and reading through the device; data checked in the guest and in the image file.</summary>
    [Theory(Timeout = 2 * GuestCollection.TestTimeoutMs)]
    [InlineData("10")]
    [InlineData("7.2")]
    public async Task Postcopy_migration_keeps_the_guests_reads_and_writes(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        await Qemu72MigrationBug.RunAsync(qemu, async () =>
        {
            using var dir = new TempDirectory("vhost-blk-postcopy-");

            // The writer's 16 MiB, then 16 MiB of known content for the reader.
            string disk = dir.CreateFile("disk.img", 2 * Chunks * ChunkBytes);
            byte[] content = RandomNumberGenerator.GetBytes(Chunks * ChunkBytes);
            using (FileStream f = File.OpenWrite(disk))
            {
                f.Seek(Chunks * ChunkBytes, SeekOrigin.Begin);
                await f.WriteAsync(content, ct);
            }

            string expected = Convert.ToHexStringLower(MD5.HashData(content));
            using SampleProcess source = BlkMigrationTests.StartDaemon(dir, "src.sock", disk, postcopy: true);
            using SampleProcess destination = BlkMigrationTests.StartDaemon(dir, "dst.sock", disk, incoming: true, postcopy: true);
            using GuestVm vm = await GuestVm.StartAsync(BlkMigrationTests.Options(qemu, source, BlkMigrationTests.ReadTestKernel), ct);
            await vm.RunCheckedAsync(BlkWriter.WaitForDisk, cancellationToken: ct);
            await BlkWriter.StartAsync(vm, ct);
            await vm.RunCheckedAsync(
                $$"""
                rm -f /tmp/stopr; mkdir -p /tmp/sums
                cat > /tmp/reader <<'R'
                n=0
                while [ ! -e /tmp/stopr ]; do
                  echo 1 > /proc/sys/vm/drop_caches
                  dd if=/dev/vda bs={{ChunkBytes}} skip={{Chunks}} count={{Chunks}} 2>/dev/null | md5sum | cut -c1-32 > /tmp/sums/$n
                  n=$((n + 1))
                done
                R
                sh /tmp/reader > /tmp/reader.log 2>&1 &
                echo $! > /tmp/reader.pid
                """,
                cancellationToken: ct);
            await BlkWriter.WaitForPassAsync(vm, 1, ct);

            string trace = Path.Combine(dir.Path, "dst-trace.log");
            QemuGuestOptions target = BlkMigrationTests.Options(qemu, destination, BlkMigrationTests.ReadTestKernel);
            target.AddArguments("-D", trace, "-trace", "vhost_user_postcopy_fault_handler_found", "-trace", "vhost_user_postcopy_waker_found");
            var slow = new JsonObject { ["max-bandwidth"] = 24L << 20, ["max-postcopy-bandwidth"] = 12L << 20 };
            JsonObject info = await vm.MigrateAsync(target, parameters: slow, postcopy: true, cancellationToken: ct);
            await BlkWriter.WaitForProgressAsync(vm, await BlkWriter.ProgressAsync(vm, ct), ct);

            GuestCommandResult reads = await vm.RunCheckedAsync(
                $$"""
                touch /tmp/stopr; while kill -0 $(cat /tmp/reader.pid) 2>/dev/null; do sleep 0.1; done
                echo passes=$(ls /tmp/sums | wc -l)
                echo bad=$(cat /tmp/sums/* | grep -v -c -x {{expected}})
                """,
                TimeSpan.FromSeconds(120),
                ct);
            GuestCommandResult verify = await BlkWriter.StopAndVerifyAsync(vm, ct);
            string faults = File.Exists(trace) ? File.ReadAllText(trace) : "";
            int served = faults.Split('\n').Count(l => l.Contains("vhost_user_postcopy_fault_handler_found", StringComparison.Ordinal));
            string everything = $"{info.ToJsonString()}\nreader: {reads.Text}\nwriter: {verify.Text}\nfaults the destination QEMU served for the daemon: {served}\n{vm.Describe()}\n--- source daemon ---\n{source.Output}\n--- destination daemon ---\n{destination.Output}";
            TestContext.Current.TestOutputHelper?.WriteLine(everything);

            Assert.True(verify.Value("same") == "yes", "the disk differs from what the guest wrote\n" + everything);
            Assert.True(reads.Value("bad") == "0", "a read pass returned other data than the disk holds\n" + everything);
            Assert.True(int.Parse(reads.Value("passes") ?? "0", System.Globalization.CultureInfo.InvariantCulture) >= 2, "the reader did not get through two passes\n" + everything);
            Assert.Contains("registered for missing-page faults", destination.Output, StringComparison.Ordinal);
            Assert.Contains("postcopy: ended", destination.Output, StringComparison.Ordinal);
            Assert.True(served > 0, "the destination daemon never faulted on a page that had not arrived (the test did not exercise postcopy's fault path)\n" + everything);
            Assert.DoesNotContain("fail:", source.Output + destination.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled", source.Output + destination.Output, StringComparison.Ordinal);
            Assert.Equal(0, await vm.ShutdownAsync(ct));
            destination.Kill();
            source.Kill();
            Assert.Equal(verify.Value("expect"), Md5Prefix(disk, Chunks * ChunkBytes));
        });
    }

    private static string Md5Prefix(string path, int length)
    {
        using FileStream f = File.OpenRead(path);
        byte[] head = new byte[length];
        f.ReadExactly(head);
        return Convert.ToHexStringLower(MD5.HashData(head));
    }
}
