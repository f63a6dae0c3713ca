using System.Diagnostics;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// vhost-user-blk locks its image the way QEMU does (open-file-description byte locks of QEMU's
/// file-posix driver), checked against real QEMU tools: qemu-io and qemu-img refuse to write an
/// image we serve, qemu-storage-daemon's lock is seen by us, and a second vhost-user-blk is refused.
/// </summary>
public sealed class BlkImageLockTests
{
    private const string QemuImg = "/usr/bin/qemu-img";
    private const string QemuIo = "/usr/bin/qemu-io";
    private const string StorageDaemon = "/usr/bin/qemu-storage-daemon";

    [Fact]
    public void A_second_vhost_user_blk_is_refused_while_the_first_writes_and_starts_after_it_stopped()
    {
        using var dir = new TempDirectory("vblk-lock-");
        string disk = dir.CreateFile("disk.img", 1 << 20);
        using (SampleProcess first = Start(dir, disk, "a.sock"))
        {
            (int exit, string output) = RunToExit(dir, disk, "b.sock");
            Assert.Equal(1, exit);
            Assert.Contains("image is locked", output, StringComparison.Ordinal);
            Assert.Contains("write", output, StringComparison.Ordinal);

            // A reader is refused too: a QEMU disk without share-rw does not read under a writer.
            (exit, output) = RunToExit(dir, disk, "c.sock", "--read-only");
            Assert.Equal(1, exit);
            Assert.Contains("image is locked", output, StringComparison.Ordinal);

            // --no-lock is the operator's explicit override.
            using SampleProcess forced = Start(dir, disk, "d.sock", "--no-lock");
            Assert.False(forced.HasExited);
            Assert.False(first.HasExited);
        }

        // The locks die with the process.
        using SampleProcess again = Start(dir, disk, "e.sock");
        Assert.False(again.HasExited);
    }

    [Fact]
    public void Two_read_only_disks_share_the_image()
    {
        using var dir = new TempDirectory("vblk-lock-");
        string disk = dir.CreateFile("disk.img", 1 << 20);
        using SampleProcess a = Start(dir, disk, "a.sock", "--read-only");
        using SampleProcess b = Start(dir, disk, "b.sock", "--read-only");
        Assert.False(a.HasExited);
        Assert.False(b.HasExited);

        // ... and a writer is refused while they read.
        (int exit, string output) = RunToExit(dir, disk, "c.sock");
        Assert.Equal(1, exit);
        Assert.Contains("image is locked", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Qemu_tools_that_write_are_refused_readers_are_not_and_writers_work_once_we_stopped()
    {
        using var dir = new TempDirectory("vblk-lock-");
        string disk = dir.CreateFile("disk.img", 1 << 20);
        using (SampleProcess blk = Start(dir, disk, "a.sock"))
        {
            // QEMU's own lock check, with QEMU's own message.
            (int exit, string output) = Run(QemuIo, "-f", "raw", "-c", "write 0 512", disk);
            Assert.NotEqual(0, exit);
            Assert.Contains("Failed to get \"write\" lock", output, StringComparison.Ordinal);
            (exit, output) = Run(QemuImg, "resize", "-f", "raw", disk, "2M");
            Assert.NotEqual(0, exit);
            Assert.Contains("lock", output, StringComparison.Ordinal);
            Assert.Equal(1 << 20, new FileInfo(disk).Length);

            // Readers that share writes (qemu-img info, a read-only qemu-io) are let in, as QEMU lets them in.
            (exit, output) = Run(QemuImg, "info", "-f", "raw", disk);
            Assert.True(exit == 0, output);
            (exit, output) = Run(QemuIo, "-r", "-f", "raw", "-c", "read 0 512", disk);
            Assert.True(exit == 0, output);
            Assert.False(blk.HasExited);
        }

        (int after, string text) = Run(QemuIo, "-f", "raw", "-c", "write 0 512", disk);
        Assert.True(after == 0, text);
    }

    [Fact]
    public void We_see_the_lock_of_a_qemu_storage_daemon_export()
    {
        using var dir = new TempDirectory("vblk-lock-");
        string disk = dir.CreateFile("disk.img", 1 << 20);
        string socket = Path.Combine(dir.Path, "qsd.sock");
        var psi = new ProcessStartInfo(StorageDaemon) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[]
        {
            "--blockdev", $"driver=file,node-name=file0,filename={QemuGuestOptions.EscapeOptionValue(disk)}",
            "--blockdev", "driver=raw,node-name=disk0,file=file0",
            "--export", $"type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path={QemuGuestOptions.EscapeOptionValue(socket)},writable=on,num-queues=1",
        })
        {
            psi.ArgumentList.Add(a);
        }

        using Process qsd = Process.Start(psi)!;
        try
        {
            var w = Stopwatch.StartNew();
            while (!File.Exists(socket))
            {
                Assert.False(qsd.HasExited, "qemu-storage-daemon exited: " + (qsd.HasExited ? qsd.StandardError.ReadToEnd() : string.Empty));
                Assert.True(w.Elapsed < TimeSpan.FromSeconds(10), "qemu-storage-daemon did not create its socket");
                Thread.Sleep(20);
            }

            (int exit, string output) = RunToExit(dir, disk, "b.sock");
            Assert.Equal(1, exit);
            Assert.Contains("image is locked", output, StringComparison.Ordinal);
        }
        finally
        {
            qsd.Kill();
            qsd.WaitForExit();
        }
    }

    private static SampleProcess Start(TempDirectory dir, string disk, string socket, params string[] extra)
        => SampleProcess.Start("vhost-user-blk", ["--socket-path", Path.Combine(dir.Path, socket), "--blk-file", disk, .. extra]);

    /// <summary>Runs a vhost-user-blk that is expected to give up; one that serves instead is killed after 30 s and fails the test.</summary>
    private static (int Exit, string Output) RunToExit(TempDirectory dir, string disk, string socket, params string[] extra)
        => Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "vhost-user-blk.dll"), "--socket-path", Path.Combine(dir.Path, socket), "--blk-file", disk, .. extra]);

    private static (int Exit, string Output) Run(string program, params string[] args)
    {
        (int exit, string stdout, string stderr) = ChildProcess.Run(program, args);
        return (exit, stdout + stderr);
    }
}
