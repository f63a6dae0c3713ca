using System.Diagnostics;
using System.Security.Cryptography;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests;

/// <summary>
/// The harness with a real vhost-user device: QEMU's vhost-user-blk-pci served by
/// qemu-storage-daemon (a C backend from qemu-system-common). This is the template for the
/// project's own backends: start the backend on a socket, <see cref="QemuGuestOptions.AddVhostUserDevice"/>,
/// and let a guest script exercise the device.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class VhostUserPeerTests
{
    private const string StorageDaemon = "/usr/bin/qemu-storage-daemon";

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task Guest_writes_and_reads_a_vhost_user_blk_disk_served_by_qemu_storage_daemon()
    {
        GuestImage image = await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken);
        Assert.SkipUnless(File.Exists(StorageDaemon), $"{StorageDaemon} not installed (package qemu-system-common)");

        DirectoryInfo dir = Directory.CreateTempSubdirectory("vhost-qsd-");
        try
        {
            string disk = Path.Combine(dir.FullName, "disk.img");
            string socket = Path.Combine(dir.FullName, "blk.sock");
            using (FileStream f = File.Create(disk))
            {
                f.SetLength(16 << 20);
            }

            using Process qsd = StartStorageDaemon(disk, socket);
            try
            {
                for (var w = Stopwatch.StartNew(); !File.Exists(socket); await Task.Delay(20, TestContext.Current.CancellationToken))
                {
                    if (qsd.HasExited)
                    {
                        Assert.Fail($"qemu-storage-daemon exited with {qsd.ExitCode}: {await qsd.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}");
                    }

                    Assert.True(w.Elapsed < TimeSpan.FromSeconds(10), "qemu-storage-daemon did not create its socket");
                }

                var options = new QemuGuestOptions
                {
                    MemoryMiB = 256,
                    Script = """
                        . /run/vhosttest/lib.sh
                        for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
                        [ -b /dev/vda ] || { vt_fail blk-present "no /dev/vda"; exit 1; }
                        vt_pass blk-present "sectors=$(cat /sys/block/vda/size)"
                        dd if=/dev/urandom of=/tmp/pattern bs=4096 count=256 2>/dev/null
                        dd if=/tmp/pattern of=/dev/vda bs=4096 count=256 oflag=direct conv=fsync 2>/dev/null
                        dd if=/dev/vda of=/tmp/back bs=4096 count=256 iflag=direct 2>/dev/null
                        if cmp -s /tmp/pattern /tmp/back; then vt_pass blk-readback "md5=$(md5sum < /tmp/pattern | cut -c1-32)"
                        else vt_fail blk-readback "read-back differs from the written pattern"; fi
                        """,
                };
                options.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=1");
                var watch = Stopwatch.StartNew();
                GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
                TestContext.Current.TestOutputHelper?.WriteLine($"wall {watch.Elapsed.TotalSeconds:F1} s");

                Assert.True(r.Succeeded, r.Describe());
                Assert.Equal("sectors=32768", r.Find("blk-present")?.Detail);
                string? md5 = r.Find("blk-readback")?.Detail;
                Assert.NotNull(md5);

                // The guest's writes went through the backend into the image file.
                byte[] head = new byte[1 << 20];
                await using (FileStream f = File.OpenRead(disk))
                {
                    await f.ReadExactlyAsync(head, TestContext.Current.CancellationToken);
                }

                Assert.Equal(md5, "md5=" + Convert.ToHexStringLower(MD5.HashData(head)));
            }
            finally
            {
                qsd.Kill(entireProcessTree: true);
                await qsd.WaitForExitAsync(TestContext.Current.CancellationToken);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static Process StartStorageDaemon(string disk, string socket)
    {
        var psi = new ProcessStartInfo(StorageDaemon)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in new[]
        {
            "--blockdev", $"driver=file,node-name=file0,filename={QemuGuestOptions.EscapeOptionValue(disk)}",
            "--blockdev", "driver=raw,node-name=disk0,file=file0",
            "--export", $"type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path={QemuGuestOptions.EscapeOptionValue(socket)},writable=on,num-queues=1",
        })
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi) ?? throw new InvalidOperationException("cannot start qemu-storage-daemon");
    }
}
