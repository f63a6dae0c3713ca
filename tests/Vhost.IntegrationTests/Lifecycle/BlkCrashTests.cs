using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Win32.SafeHandles;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// The blk daemon killed with SIGKILL while it holds 32 guest writes, completing out of order;
/// a new daemon on the same socket and image; QEMU reconnects (<c>reconnect=1</c>) and hands it the
/// inflight region it kept (SET_INFLIGHT_FD); the new daemon resubmits what the region says was in
/// flight. Every write the guest issued must be on the disk exactly as written, the guest must see
/// no error, and no write may be applied after a newer one to the same block.
/// </summary>
/// <remarks>
/// The guest runs <c>blkgen</c> (tools/guest/blkgen.c): 32 threads, one O_DIRECT write in flight
/// each, every block written twice (generation 1, then generation 2 once 1 completed), each block's
/// data naming its block and generation (<see cref="BlkGenPattern"/>). The daemon runs with
/// <c>--latency</c> (a slow disk: each operation held a random 0-30 ms before and after; the
/// second daemon 0-300 ms), so its requests stay in flight and complete out of order. The test
/// watches the inflight region in QEMU's memfd and sends the SIGKILL when it shows all 32 writes
/// held by the daemon; after the kill it reads the region as the dead daemon left it, and the
/// guest's own count of requests in flight. The second daemon is killed again in the middle of
/// its recovery; a third one finishes. A write lost shows as a block left at generation 1 or zero
/// (or the writer never finishes); a write of generation 1 applied again after generation 2
/// shows as generation 1 in a block finished before the kill; anything torn or misplaced shows as
/// foreign data.
/// </remarks>
[Collection(GuestCollection.Name)]
public sealed partial class BlkCrashTests
{
    private const int Lanes = 32;
    private const int Blocks = 2048;
    private const int BlockSize = 4096;
    private const int Generations = 2;
    private const int LatencyMs = 30;

    /// <summary>The second daemon's latency: slow enough that the test cannot miss the middle of its recovery on a busy machine.</summary>
    private const int RecoveryLatencyMs = 300;

    private const int SigKill = 9;
    private const int SigCont = 18;
    private const int SigStop = 19;

    private static readonly Regex RingStarted = new(@"ring 0 started \(size \d+, base \d+, (\d+) inflight requests to resubmit\)", RegexOptions.Compiled);

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2", false)]
    [InlineData("10", false)]
    [InlineData("7.2", true)]
    [InlineData("10", true)]
    public async Task Daemon_killed_with_32_writes_in_flight_applies_each_exactly_once_after_QEMU_reconnects(string qemuVersion, bool packed)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var total = Stopwatch.StartNew();
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using var dir = new TempDirectory("vhost-blk-crash-");
        string disk = dir.CreateFile("disk.img", (long)Blocks * BlockSize);
        string socket = Path.Combine(dir.Path, "blk.sock");
        string[] daemonArgs = ["--socket-path", socket, "--blk-file", disk, "--latency", LatencyMs.ToString(CultureInfo.InvariantCulture), "--verbose"];
        string[] slowDaemonArgs = ["--socket-path", socket, "--blk-file", disk, "--latency", RecoveryLatencyMs.ToString(CultureInfo.InvariantCulture), "--verbose"];
        ulong seed = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        SampleProcess daemon = SampleProcess.Start("vhost-user-blk", daemonArgs);
        string firstDaemon = string.Empty;
        string secondDaemon = string.Empty;
        try
        {
            var options = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
            options.AddVhostUserDevice("vhost-user-blk-pci", socket, packed ? "num-queues=1,packed=on" : "num-queues=1", reconnectSeconds: 1);
            using GuestVm vm = await GuestVm.StartAsync(options, ct);
            await vm.RunCheckedAsync(BlkWriter.WaitForDisk, cancellationToken: ct);

            // The guest's driver negotiated the ring layout asked for (VIRTIO_F_RING_PACKED is feature bit 34).
            GuestCommandResult features = await vm.RunCheckedAsync("cat /sys/block/vda/device/features", cancellationToken: ct);
            Assert.Equal(packed ? '1' : '0', features.Text.Trim()[34]);
            if ((await vm.RunAsync("command -v blkgen", cancellationToken: ct)).ExitCode != 0)
            {
                Assert.Skip("the test guest has no blkgen: tools/guest/mkinitramfs.sh builds it from tools/guest/blkgen.c with the host's C compiler (tools/install-test-deps.sh installs gcc and libc6-dev)");
            }

            // QEMU keeps the inflight memfd it got at GET_INFLIGHT_FD when the guest's driver started the device.
            string regionPath = InflightRegionView.FindInProcess(vm.Qemu.ProcessId)
                ?? throw new InvalidOperationException("QEMU holds no vhost-inflight memfd: INFLIGHT_SHMFD was not negotiated\n" + daemon.Output);
            using SafeFileHandle region = File.OpenHandle(regionPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);

            await vm.RunCheckedAsync(
                $"""
                dmesg -c > /dev/null
                ( blkgen write /dev/vda {Lanes} {Blocks} {BlockSize} {seed} {Generations} > /tmp/blkgen.out 2>&1; echo $? > /tmp/blkgen.rc ) > /dev/null 2>&1 &
                for i in $(seq 100); do grep -q started /tmp/blkgen.out 2>/dev/null && exit 0; sleep 0.1; done; cat /tmp/blkgen.out; exit 1
                """,
                cancellationToken: ct);

            // A quarter of the blocks finished (both generations) before the kill: they are never
            // written again, so an old write replayed into one of them stays visible.
            var w = Stopwatch.StartNew();
            while (CountAt(File.ReadAllBytes(disk), seed, Generations) < Blocks / 4)
            {
                if (w.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException("the guest's writes do not reach the image\n" + vm.Describe());
                }

                await Task.Delay(50, ct);
            }

            // SIGKILL the moment the region shows every lane's write held by the daemon.
            string firstKill = KillWhen(daemon, region, packed, v => v.Inflight.Count >= Lanes, $"{Lanes} requests in flight", vm);
            daemon.Kill();
            firstDaemon = daemon.Output;
            InflightRegionView atKill = InflightRegionView.Read(region, packed);
            byte[] imageAtKill = File.ReadAllBytes(disk);
            int doneAtKill = CountAt(imageAtKill, seed, Generations);
            int untouchedAtKill = imageAtKill.Chunk(BlockSize).Count(b => !b.AsSpan().ContainsAnyExcept((byte)0));

            // The guest, with no back-end: every lane waits for its write (32 requests in flight on vda).
            GuestCommandResult stuck = await vm.RunCheckedAsync(
                $"for i in $(seq 50); do set -- $(cat /sys/block/vda/inflight); [ \"$2\" -ge {Lanes} ] && break; sleep 0.1; done; echo \"reads=$1 writes=$2\"; echo \"rc=$(cat /tmp/blkgen.rc 2>/dev/null)\"",
                cancellationToken: ct);

            // A second daemon (slower: --latency 300), killed in the middle of its recovery: when at
            // most half of the requests it resubmitted are left and it has fetched new ones since.
            // What it resubmitted must stay marked (with the first fetch order) until done.
            daemon.Dispose();
            daemon = SampleProcess.Start("vhost-user-blk", slowDaemonArgs);
            int resubmitted = WaitForRingStart(daemon, vm);
            ulong lastFirst = atKill.Inflight[^1].Counter;
            string secondKill = KillWhen(
                daemon,
                region,
                packed,
                v => v.Inflight.Count(x => x.Counter <= lastFirst) is > 0 and <= Lanes / 2 && v.Inflight.Any(x => x.Counter > lastFirst),
                "the recovery half done",
                vm);
            daemon.Kill();
            secondDaemon = daemon.Output;
            InflightRegionView atSecondKill = InflightRegionView.Read(region, packed);

            // A third daemon finishes the job.
            daemon.Dispose();
            daemon = SampleProcess.Start("vhost-user-blk", daemonArgs);
            int resubmittedAgain = WaitForRingStart(daemon, vm);

            GuestCommandResult writer = await vm.RunCheckedAsync(
                "for i in $(seq 450); do [ -s /tmp/blkgen.rc ] && break; sleep 0.1; done; cat /tmp/blkgen.out; echo rc=$(cat /tmp/blkgen.rc)",
                TimeSpan.FromSeconds(120),
                ct);
            GuestCommandResult verify = await vm.RunAsync($"blkgen verify /dev/vda {Blocks} {BlockSize} {seed} {Generations}", TimeSpan.FromSeconds(60), ct);
            GuestCommandResult kernel = await vm.RunCheckedAsync("dmesg", cancellationToken: ct);
            InflightRegionView atEnd = InflightRegionView.Read(region, packed);

            string report = $"""
                QEMU {qemu.Version}, {(packed ? "packed" : "split")} ring, seed {seed}, {Lanes} lanes x {Blocks / Lanes} blocks x {Generations} generations of {BlockSize} bytes, --latency {LatencyMs}
                killed {firstKill}, then {secondKill}
                at the kill: {doneAtKill} blocks finished, {untouchedAtKill} untouched; guest: {stuck.Text.Replace('\n', ' ')}
                region at the kill: {atKill}
                second daemon resubmitted {resubmitted}, killed mid-recovery; region then: {atSecondKill}
                third daemon resubmitted {resubmittedAgain}; region at the end: {atEnd}
                writer: {writer.Text.Replace('\n', ' ')}; guest verify: {verify.Text.Replace('\n', ' ')}
                guest kernel after the start: {kernel.Text.Replace("\n", " | ", StringComparison.Ordinal)}
                QEMU stderr: {vm.QemuErrors.Replace("\n", " | ", StringComparison.Ordinal)}
                {total.Elapsed.TotalSeconds:F1} s
                """;
            TestContext.Current.TestOutputHelper?.WriteLine(report);
            string context = $"{report}\n{vm.Describe()}\n--- first daemon ---\n{firstDaemon}\n--- second daemon ---\n{secondDaemon}\n--- third daemon ---\n{daemon.Output}";

            // The kill came mid-run, with the 32 writes held by the daemon, completing out of order.
            Assert.True(doneAtKill < Blocks && untouchedAtKill > 0, "the writer was not mid-run at the kill\n" + context);
            Assert.True(atKill.Inflight.Count == Lanes, $"the region showed {atKill.Inflight.Count} requests in flight after the kill, not {Lanes}\n{context}");
            Assert.True(atKill.ShowsOutOfOrderCompletion, "the requests in flight at the kill do not show out-of-order completion\n" + context);
            Assert.Matches($"(?m)writes={Lanes}$", stuck.Text);
            Assert.Equal(string.Empty, stuck.Value("rc") ?? string.Empty);

            // Each new daemon resubmitted exactly what the region held. The second one was killed
            // while it still held some of those: they kept their marks and their fetch order, and
            // whatever it fetched anew came after them.
            Assert.Equal(atKill.Inflight.Count, resubmitted);
            Assert.Equal(atSecondKill.Inflight.Count, resubmittedAgain);
            var stillPending = atSecondKill.Inflight.Where(x => x.Counter <= lastFirst).ToList();
            Assert.True(stillPending.Count is > 0 and <= Lanes / 2 && stillPending.Count < atSecondKill.Inflight.Count, "the second kill did not come mid-recovery\n" + context);
            Assert.True(stillPending.All(atKill.Inflight.Contains), "the second kill left marks the first one did not\n" + context);
            Assert.True(atEnd.Inflight.Count == 0, "requests are still marked in flight after the writer finished\n" + context);

            // The guest saw every write succeed and reads back the last generation everywhere.
            Assert.Contains($"writes={Blocks * Generations} errors=0", writer.Text, StringComparison.Ordinal);
            Assert.Equal("0", writer.Value("rc"));
            Assert.True(verify.ExitCode == 0, "the guest reads back other data\n" + context);
            Assert.False(Regex.IsMatch(kernel.Text, "error|fail|timed? ?out|abort|vda|virtio", RegexOptions.IgnoreCase), "the guest's kernel complained\n" + context);

            // The image file: every block exactly generation 2 (no lost write, no old write applied late, nothing torn).
            byte[] image = File.ReadAllBytes(disk);
            var wrong = new List<string>();
            for (int b = 0; b < Blocks; b++)
            {
                BlkGenPattern.State state = BlkGenPattern.Classify(image.AsSpan(b * BlockSize, BlockSize), seed, (ulong)b, Generations, out ulong generation);
                if (state != BlkGenPattern.State.Expected)
                {
                    wrong.Add($"block {b}: {state} (generation {generation})");
                }
            }

            Assert.True(wrong.Count == 0, $"{wrong.Count} blocks of the image are wrong: {string.Join("; ", wrong.Take(10))}\n{context}");
            Assert.DoesNotContain("vhost_", vm.QemuErrors, StringComparison.Ordinal);
            Assert.DoesNotContain(" fail: ", firstDaemon + secondDaemon + daemon.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(" warn: ", firstDaemon + secondDaemon + daemon.Output, StringComparison.Ordinal);
            Assert.Equal(0, await vm.ShutdownAsync(ct));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- first daemon ---\n{firstDaemon}\n--- second daemon ---\n{secondDaemon}\n--- daemon ---\n{daemon.Output}", e);
        }
        finally
        {
            daemon.Dispose();
        }
    }

    /// <summary>
    /// SIGKILLs the daemon the moment the inflight region satisfies <paramref name="condition"/>:
    /// once a read does, the daemon is frozen (SIGSTOP, every thread stopped) and the region read
    /// again, so the kill lands on exactly the state the test saw; otherwise it goes on (SIGCONT).
    /// </summary>
    /// <returns>How long it watched, and how often it froze the daemon, for the report.</returns>
    private static string KillWhen(SampleProcess daemon, SafeFileHandle region, bool packed, Func<InflightRegionView, bool> condition, string what, GuestVm vm)
    {
        int stops = 0;
        int pid = daemon.DaemonProcessId ?? throw new InvalidOperationException("the daemon exited\n" + daemon.Output);
        var w = Stopwatch.StartNew();
        InflightRegionView last;
        while (true)
        {
            last = InflightRegionView.Read(region, packed);
            if (condition(last))
            {
                Signal(pid, SigStop);
                stops++;
                WaitUntilStopped(pid);
                last = InflightRegionView.Read(region, packed);
                if (condition(last))
                {
                    Signal(pid, SigKill);
                    return $"after {w.Elapsed.TotalMilliseconds:F0} ms, {stops} SIGSTOP";
                }

                Signal(pid, SigCont);
            }

            if (w.Elapsed > TimeSpan.FromSeconds(20))
            {
                throw new TimeoutException($"the inflight region never showed {what}; last: {last}\n{vm.Describe()}");
            }

            Thread.Yield();
        }
    }

    /// <summary>Waits (polling every millisecond) until QEMU reconnected and the daemon started its ring; returns how many requests it resubmits.</summary>
    private static int WaitForRingStart(SampleProcess daemon, GuestVm vm)
    {
        var w = Stopwatch.StartNew();
        while (true)
        {
            Match m = RingStarted.Match(daemon.Output);
            if (m.Success)
            {
                return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }

            if (w.Elapsed > TimeSpan.FromSeconds(30) || daemon.HasExited)
            {
                throw new TimeoutException("QEMU did not reconnect and start the ring on the new daemon\n" + daemon.Output + "\n" + vm.Describe());
            }

            Thread.Sleep(1);
        }
    }

    private static void Signal(int pid, int signal)
    {
        if (kill(pid, signal) != 0)
        {
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Waits until every thread of <paramref name="pid"/> is stopped (state T in /proc).</summary>
    private static void WaitUntilStopped(int pid)
    {
        var w = Stopwatch.StartNew();
        while (!Directory.EnumerateDirectories($"/proc/{pid}/task").All(IsStopped))
        {
            if (w.Elapsed > TimeSpan.FromSeconds(5))
            {
                throw new TimeoutException($"process {pid} did not stop on SIGSTOP");
            }

            Thread.Yield();
        }

        static bool IsStopped(string task)
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                return stat[stat.LastIndexOf(')') + 2] is 'T' or 't';
            }
            catch (IOException)
            {
                return true; // the thread is gone
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    /// <summary>Blocks of <paramref name="image"/> that hold exactly generation <paramref name="generation"/>.</summary>
    private static int CountAt(byte[] image, ulong seed, ulong generation)
    {
        int n = 0;
        for (int b = 0; b < Blocks; b++)
        {
            if (BlkGenPattern.Classify(image.AsSpan(b * BlockSize, BlockSize), seed, (ulong)b, generation, out _) == BlkGenPattern.State.Expected)
            {
                n++;
            }
        }

        return n;
    }
}
