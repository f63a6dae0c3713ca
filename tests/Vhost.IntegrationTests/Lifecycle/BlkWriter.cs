using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// A guest workload that proves no write is lost or replayed across a lifecycle operation: two
/// random patterns A and B in guest RAM; pass p writes pattern p%2 to the disk chunk by chunk with
/// O_DIRECT and records "pass next-chunk" after each completed write. Whatever happens under it, the
/// disk must end up as pattern(p) before the recorded chunk and pattern(p-1) after it: a lost write
/// leaves the other pattern behind, a stale write replayed late overwrites a newer one.
/// The writer is <c>blkgen passes</c> (one process; tools/guest/blkgen.c) when the guest has it,
/// else a shell loop of <c>dd</c>: a process per chunk churns guest pages, which QEMU 7.2's TCG
/// migration corrupts now and then by itself (a soft lockup on the destination; docs/vm-lifecycle.md).
/// </summary>
internal static class BlkWriter
{
    public const int ChunkBytes = 64 << 10;
    public const int Chunks = 256; // 16 MiB

    public const string WaitForDisk = "for i in $(seq 50); do [ -b /dev/vda ] && exit 0; sleep 0.1; done; echo no /dev/vda; exit 1";

    /// <summary>Creates the patterns and starts the writer in the background.</summary>
    public static Task StartAsync(GuestVm vm, CancellationToken ct) => vm.RunCheckedAsync(
        $$"""
        rm -f /tmp/stop /tmp/writer.failed
        head -c {{Chunks * ChunkBytes}} /dev/urandom > /tmp/A; head -c {{Chunks * ChunkBytes}} /dev/urandom > /tmp/B
        cat > /tmp/writer <<'W'
        command -v blkgen >/dev/null && exec blkgen passes /dev/vda /tmp/A /tmp/B {{ChunkBytes}} {{Chunks}} /tmp
        p=0; i=0
        while [ ! -e /tmp/stop ]; do
          src=/tmp/A; [ $((p % 2)) = 1 ] && src=/tmp/B
          dd if=$src of=/dev/vda bs={{ChunkBytes}} count=1 skip=$i seek=$i oflag=direct conv=notrunc 2>/tmp/dd.err || { echo "dd failed: $(cat /tmp/dd.err)" > /tmp/writer.failed; exit 1; }
          i=$((i + 1)); [ $i = {{Chunks}} ] && { i=0; p=$((p + 1)); }
          echo "$p $i" > /tmp/progress
        done
        W
        echo "0 0" > /tmp/progress
        sh /tmp/writer > /tmp/writer.log 2>&1 &
        """,
        cancellationToken: ct);

    /// <summary>Waits until the writer is in pass <paramref name="pass"/> or later.</summary>
    public static async Task WaitForPassAsync(GuestVm vm, int pass, CancellationToken ct)
    {
        for (int i = 0; i < 600; i++)
        {
            string progress = await ProgressAsync(vm, ct);
            if (int.Parse(progress.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) >= pass)
            {
                return;
            }

            await Task.Delay(200, ct);
        }

        throw new TimeoutException("the writer did not reach pass " + pass + "\n" + vm.Describe());
    }

    /// <summary>Waits until the writer made progress since <paramref name="mark"/> (a value of <see cref="ProgressAsync"/>).</summary>
    public static async Task WaitForProgressAsync(GuestVm vm, string mark, CancellationToken ct)
    {
        for (int i = 0; i < 300; i++)
        {
            if (await ProgressAsync(vm, ct) != mark)
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        throw new TimeoutException($"the writer made no progress (stuck at {mark})\n{await StuckStateAsync(vm, ct)}\n{vm.Describe()}");
    }

    /// <summary>What the guest says about a writer that stopped moving: requests in flight on vda, where dd sleeps, the kernel log.</summary>
    private static async Task<string> StuckStateAsync(GuestVm vm, CancellationToken ct)
    {
        try
        {
            GuestCommandResult r = await vm.RunAsync(
                "echo \"vda inflight: $(cat /sys/block/vda/inflight)\"; for p in $(pidof dd blkgen); do echo \"writer $p: $(cat /proc/$p/wchan) $(cat /proc/$p/stat | cut -d' ' -f3)\"; cat /proc/$p/stack 2>/dev/null; done; cat /tmp/writer.log; dmesg | tail -30",
                TimeSpan.FromSeconds(20),
                ct);
            return "--- guest state ---\n" + r.Text;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return "--- guest state unavailable: " + e.Message;
        }
    }

    /// <summary>The writer's "pass next-chunk"; throws with the reason when it failed.</summary>
    public static async Task<string> ProgressAsync(GuestVm vm, CancellationToken ct)
    {
        // The writer rewrites the file after each chunk: a read in between sees it empty.
        GuestCommandResult r = await vm.RunCheckedAsync("for i in $(seq 100); do p=$(cat /tmp/progress); [ -n \"$p\" ] && break; sleep 0.01; done; echo \"$p\"; [ ! -e /tmp/writer.failed ] || { cat /tmp/writer.failed; exit 1; }", cancellationToken: ct);
        return r.Text.Length > 0 ? r.Text : throw new InvalidOperationException("the writer's progress file stayed empty\n" + vm.Describe());
    }

    /// <summary>
    /// Stops the writer, drops the caches and compares the disk with what the writer wrote.
    /// Returns the result, with <c>same=yes</c> when they match and <c>expect=MD5</c> of the expected image.
    /// </summary>
    public static Task<GuestCommandResult> StopAndVerifyAsync(GuestVm vm, CancellationToken ct) => vm.RunCheckedAsync(
        $$"""
        touch /tmp/stop; while pidof dd blkgen >/dev/null || [ ! -s /tmp/progress ]; do sleep 0.1; done; sleep 0.5
        [ -e /tmp/writer.failed ] && { cat /tmp/writer.failed; exit 1; }
        read p n < /tmp/progress
        cur=/tmp/A; prev=/tmp/B; [ $((p % 2)) = 1 ] && { cur=/tmp/B; prev=/tmp/A; }
        dd if=$cur of=/tmp/expect bs={{ChunkBytes}} count=$n 2>/dev/null
        dd if=$prev of=/tmp/expect bs={{ChunkBytes}} skip=$n seek=$n count=$(({{Chunks}} - n)) conv=notrunc 2>/dev/null
        echo 3 > /proc/sys/vm/drop_caches
        dd if=/dev/vda of=/tmp/actual bs={{ChunkBytes}} count={{Chunks}} iflag=direct 2>/dev/null
        echo "progress=$p $n"
        echo "expect=$(md5sum < /tmp/expect | cut -c1-32)"
        cmp /tmp/expect /tmp/actual && echo same=yes
        rm -f /tmp/expect /tmp/actual
        """,
        TimeSpan.FromSeconds(120),
        ct);
}
