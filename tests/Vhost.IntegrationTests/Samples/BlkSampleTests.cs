using System.Diagnostics;
using System.Security.Cryptography;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// The <c>vhost-user-blk</c> sample served to a real QEMU guest (QEMU's vhost-user-blk-pci and the
/// guest kernel's virtio-blk driver): O_DIRECT pattern on two queues, a second boot, discard, a
/// guest filesystem, and a back-end killed and restarted while the guest writes.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlkSampleTests
{
    private const string Sample = "vhost-user-blk";
    private const string WaitForDisk = """
        . /run/vhosttest/lib.sh
        for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
        [ -b /dev/vda ] || { vt_fail blk-present "no /dev/vda"; exit 1; }
        vt_pass blk-present "sectors=$(cat /sys/block/vda/size)"
        """;

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Guest_writes_a_pattern_with_O_DIRECT_on_two_queues_and_a_second_boot_reads_it_back(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken);
        using var dir = new TempDirectory("vhost-blk-");
        string disk = dir.CreateFile("disk.img", 32 << 20);
        string socket = Path.Combine(dir.Path, "blk.sock");
        using SampleProcess blk = SampleProcess.Start(Sample, ["--socket-path", socket, "--blk-file", disk, "--num-queues", "2", "--direct", "--serial", "vt-serial-1"]);

        // Boot 1: two vCPUs, so the driver uses both queues; one writer pinned to each CPU.
        var first = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Cpus = 2,
            Script = WaitForDisk + """

                vt_pass blk-serial "$(cat /sys/block/vda/serial)"
                vt_pass blk-queues "$(ls /sys/block/vda/mq | wc -l)"
                vt_pass blk-discard "$(cat /sys/block/vda/queue/discard_max_bytes) $(cat /sys/block/vda/queue/write_zeroes_max_bytes)"
                dd if=/dev/urandom of=/tmp/pattern bs=65536 count=128 2>/dev/null
                taskset 1 dd if=/tmp/pattern of=/dev/vda bs=65536 count=64 oflag=direct 2>/tmp/e0 & a=$!
                taskset 2 dd if=/tmp/pattern of=/dev/vda bs=65536 skip=64 seek=64 count=64 oflag=direct 2>/tmp/e1 & b=$!
                wait $a; ra=$?; wait $b; rb=$?
                if [ $ra = 0 ] && [ $rb = 0 ]; then vt_pass blk-write "two writers"; else vt_fail blk-write "dd exit $ra $rb: $(cat /tmp/e0 /tmp/e1)"; fi
                dd if=/dev/vda of=/tmp/back bs=65536 count=128 iflag=direct 2>/dev/null
                if cmp -s /tmp/pattern /tmp/back; then vt_pass blk-readback "md5=$(md5sum < /tmp/pattern | cut -c1-32)"
                else vt_fail blk-readback "read-back differs from the written pattern"; fi
                """,
        };
        first.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=2");
        GuestRunResult r1 = await RunAsync(first);
        Assert.True(r1.Succeeded, r1.Describe() + "\n" + blk.Output);
        Assert.Equal("sectors=65536", r1.Find("blk-present")?.Detail);
        Assert.Equal("vt-serial-1", r1.Find("blk-serial")?.Detail);
        Assert.Equal("2", r1.Find("blk-queues")?.Detail);
        Assert.NotEqual("0 0", r1.Find("blk-discard")?.Detail);
        string md5 = r1.Find("blk-readback")?.Detail ?? throw new InvalidOperationException(r1.Describe());

        // Boot 2: a new QEMU against the same daemon (the front-end went away and came back); the data is there.
        // It also discards 1 MiB it just wrote and reads zeroes back. Then the operator grows the image
        // (truncate; qemu-img resize is refused by the daemon's image lock) and sends SIGHUP: the daemon updates the capacity in its config
        // space and notifies QEMU (CONFIG_CHANGE_MSG), which reads it back and interrupts the guest,
        // whose driver resizes the disk.
        var second = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Script = WaitForDisk + """

                dd if=/dev/vda of=/tmp/back bs=65536 count=128 iflag=direct 2>/dev/null
                vt_pass blk-second-boot "md5=$(md5sum < /tmp/back | cut -c1-32)"
                dd if=/dev/urandom of=/dev/vda bs=65536 seek=256 count=16 oflag=direct 2>/dev/null
                if blkdiscard -o 16777216 -l 1048576 /dev/vda; then
                  dd if=/dev/vda of=/tmp/d bs=65536 skip=256 count=16 iflag=direct 2>/dev/null
                  dd if=/dev/zero of=/tmp/z bs=65536 count=16 2>/dev/null
                  if cmp -s /tmp/d /tmp/z; then vt_pass blk-discard-zero "discarded range reads as zeroes"; else vt_fail blk-discard-zero "discarded range is not zero"; fi
                else vt_fail blk-discard-zero "blkdiscard failed"; fi
                echo vt-resize-ready
                for i in $(seq 300); do [ "$(cat /sys/block/vda/size)" != 65536 ] && break; sleep 0.1; done
                vt_pass blk-resized "sectors=$(cat /sys/block/vda/size)"
                vt_pass blk-resized-log "$(dmesg | grep -m1 -o 'capacity change.*')"
                """,
        };
        second.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=1");
        using (QemuGuest guest = await QemuGuest.StartAsync(await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken), second, TestContext.Current.CancellationToken))
        {
            var w = Stopwatch.StartNew();
            while (!ReadIfExists(guest.OutputLogPath).Contains("vt-resize-ready", StringComparison.Ordinal))
            {
                Assert.True(w.Elapsed < TimeSpan.FromSeconds(120) && !guest.HasExited, "the guest did not reach the resize step:\n" + ReadIfExists(guest.OutputLogPath) + "\n" + blk.Output);
                await Task.Delay(20, TestContext.Current.CancellationToken);
            }

            using (var image = new FileStream(disk, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            {
                image.SetLength(48 << 20);
            }

            int pid = blk.DaemonProcessId ?? throw new InvalidOperationException("the daemon exited\n" + blk.Output);
            using (var hup = Process.Start("kill", ["-HUP", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await hup.WaitForExitAsync(TestContext.Current.CancellationToken);
                Assert.Equal(0, hup.ExitCode);
            }

            GuestRunResult r2 = await guest.WaitForExitAsync(TestContext.Current.CancellationToken);
            TestContext.Current.TestOutputHelper?.WriteLine($"guest {r2.Elapsed.TotalSeconds:F1} s");
            Assert.True(r2.Succeeded, r2.Describe() + "\n" + blk.Output);
            Assert.Equal(md5, r2.Find("blk-second-boot")?.Detail);
            Assert.Equal("sectors=98304", r2.Find("blk-resized")?.Detail);
            Assert.Contains("capacity change", r2.Find("blk-resized-log")?.Detail ?? string.Empty, StringComparison.Ordinal);
            Assert.Contains("disk grew from 33554432 to 50331648 bytes", blk.Output, StringComparison.Ordinal);
        }

        Assert.True(blk.Output.Contains("(connection 2)", StringComparison.Ordinal), blk.Output);

        // The guest's writes are in the image file.
        blk.Kill();
        Assert.Equal(md5, "md5=" + Md5OfPrefix(disk, 8 << 20));
        Assert.DoesNotContain("request ", blk.Output, StringComparison.Ordinal);
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Guest_filesystem_survives_sync_and_remount(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken);
        using var dir = new TempDirectory("vhost-blk-fs-");
        string socket = Path.Combine(dir.Path, "blk.sock");

        // The default disk: a temporary memfd (64 MiB).
        using SampleProcess blk = SampleProcess.Start(Sample, ["--socket-path", socket]);
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Script = WaitForDisk + """

                mke2fs -q -L vtdisk /dev/vda || { vt_fail fs-mkfs "mke2fs failed"; exit 1; }
                mkdir -p /mnt/d && mount -t ext2 /dev/vda /mnt/d || { vt_fail fs-mount "mount failed"; exit 1; }
                dd if=/dev/urandom of=/mnt/d/big bs=65536 count=48 2>/dev/null
                mkdir /mnt/d/dir
                for i in $(seq 30); do echo "file $i $(head -c 12 /dev/urandom | md5sum)" > /mnt/d/dir/f$i; done
                (cd /mnt/d && md5sum big dir/*) > /tmp/sums
                sync; umount /mnt/d || { vt_fail fs-umount "umount failed"; exit 1; }
                echo 3 > /proc/sys/vm/drop_caches
                mount -t ext2 -o ro /dev/vda /mnt/d || { vt_fail fs-remount "remount failed"; exit 1; }
                if (cd /mnt/d && md5sum -c -s /tmp/sums); then vt_pass fs-compare "$(wc -l < /tmp/sums) files match"
                else vt_fail fs-compare "files differ after remount"; fi
                umount /mnt/d
                """,
        };
        options.AddVhostUserDevice("vhost-user-blk-pci", socket);
        GuestRunResult r = await RunAsync(options);
        Assert.True(r.Succeeded, r.Describe() + "\n" + blk.Output);
        Assert.Equal("sectors=131072", r.Find("blk-present")?.Detail);
        Assert.Equal("31 files match", r.Find("fs-compare")?.Detail);
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Backend_killed_and_restarted_while_the_guest_writes_loses_no_block(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        GuestImage image = await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken);
        using var dir = new TempDirectory("vhost-blk-rc-");
        const int Chunks = 64;
        const int ChunkBytes = 256 << 10;
        string disk = dir.CreateFile("disk.img", 32 << 20);
        string socket = Path.Combine(dir.Path, "blk.sock");
        string[] args = ["--socket-path", socket, "--blk-file", disk];
        SampleProcess blk = SampleProcess.Start(Sample, args);
        try
        {
            var options = new QemuGuestOptions
            {
                Qemu = qemu,
                MemoryMiB = 256,
                Timeout = TimeSpan.FromSeconds(120),
                Script = WaitForDisk + $$"""

                    dd if=/dev/urandom of=/tmp/pattern bs={{ChunkBytes}} count={{Chunks}} 2>/dev/null
                    echo writing
                    bad=0
                    for i in $(seq 0 {{Chunks - 1}}); do
                      dd if=/tmp/pattern of=/dev/vda bs={{ChunkBytes}} skip=$i seek=$i count=1 oflag=direct 2>/dev/null || bad=$((bad+1))
                    done
                    [ $bad = 0 ] && vt_pass blk-write "{{Chunks}} chunks" || vt_fail blk-write "$bad chunk writes failed"
                    dd if=/dev/vda of=/tmp/back bs={{ChunkBytes}} count={{Chunks}} iflag=direct 2>/dev/null
                    if cmp -s /tmp/pattern /tmp/back; then vt_pass blk-readback "md5=$(md5sum < /tmp/pattern | cut -c1-32)"
                    else vt_fail blk-readback "read-back differs: $(cmp /tmp/pattern /tmp/back 2>&1 | head -1)"; fi
                    """,
            };
            options.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=1", reconnectSeconds: 1);
            using QemuGuest guest = await QemuGuest.StartAsync(image, options, TestContext.Current.CancellationToken);

            // Wait until the guest has written a few chunks (seen in the image file), then SIGKILL the back-end mid-stream.
            var w = Stopwatch.StartNew();
            int written = 0;
            while ((written = ChunksWritten(disk, Chunks, ChunkBytes)) < 4)
            {
                Assert.True(w.Elapsed < TimeSpan.FromSeconds(60), "the guest did not start writing:\n" + ReadIfExists(guest.OutputLogPath) + "\n" + blk.Output);
                await Task.Delay(10, TestContext.Current.CancellationToken);
            }

            blk.Kill();
            string firstOutput = blk.Output;
            blk.Dispose();
            await Task.Delay(300, TestContext.Current.CancellationToken);
            blk = SampleProcess.Start(Sample, args);

            GuestRunResult r = await guest.WaitForExitAsync(TestContext.Current.CancellationToken);
            TestContext.Current.TestOutputHelper?.WriteLine($"killed after {written} of {Chunks} chunks; guest {r.Elapsed.TotalSeconds:F1} s");
            Assert.True(r.Succeeded, r.Describe() + "\n--- first back-end\n" + firstOutput + "\n--- restarted back-end\n" + blk.Output);
            Assert.True(written < Chunks, $"the back-end was killed only after the guest wrote all {Chunks} chunks");
            Assert.True(blk.Output.Contains("front-end connected", StringComparison.Ordinal), "QEMU did not reconnect to the restarted back-end:\n" + blk.Output);
            string md5 = r.Find("blk-readback")?.Detail ?? throw new InvalidOperationException(r.Describe());
            blk.Kill();
            Assert.Equal(md5, "md5=" + Md5OfPrefix(disk, Chunks * ChunkBytes));
        }
        finally
        {
            blk.Dispose();
        }
    }

    private static async Task<GuestRunResult> RunAsync(QemuGuestOptions options)
    {
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine($"guest {r.Elapsed.TotalSeconds:F1} s");
        return r;
    }

    /// <summary>Chunks whose first 16 bytes are no longer zero (the guest writes them in order).</summary>
    private static int ChunksWritten(string disk, int chunks, int chunkBytes)
    {
        using var f = new FileStream(disk, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> head = stackalloc byte[16];
        int n = 0;
        for (int i = 0; i < chunks; i++)
        {
            f.Position = (long)i * chunkBytes;
            f.ReadExactly(head);
            if (head.IndexOfAnyExcept((byte)0) < 0)
            {
                break;
            }

            n++;
        }

        return n;
    }

    internal static string Md5OfPrefix(string path, int bytes)
    {
        byte[] data = new byte[bytes];
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            f.ReadExactly(data);
        }

        return Convert.ToHexStringLower(MD5.HashData(data));
    }

    private static string ReadIfExists(string path)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(f);
            return reader.ReadToEnd();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}
