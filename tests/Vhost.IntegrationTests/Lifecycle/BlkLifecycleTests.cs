using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// The rest of a VM's life with a <c>vhost-user-blk</c> disk, driven by QEMU itself through QMP
/// while the guest writes (one boot per QEMU version): pause and resume; the daemon killed and
/// restarted while the VM is paused, then resumed; a guest reset; a hot-unplug and replug of the
/// disk. After each, the guest's writes are all on the disk and none is replayed
/// (<see cref="BlkWriter"/>).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlkLifecycleTests
{
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Pause_restart_reset_and_replug_keep_every_write(string qemuVersion)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, ct);
        using var dir = new TempDirectory("vhost-blk-life-");
        string disk = dir.CreateFile("disk.img", BlkWriter.Chunks * BlkWriter.ChunkBytes);
        string socket = Path.Combine(dir.Path, "blk.sock");
        string[] daemonArgs = ["--socket-path", socket, "--blk-file", disk, "--direct"];
        SampleProcess daemon = SampleProcess.Start("vhost-user-blk", daemonArgs);
        var log = new List<string>();
        try
        {
            var options = new QemuGuestOptions { MemoryMiB = 256, Qemu = qemu };
            options.AddArguments("-device", "pcie-root-port,id=rp1,chassis=1,slot=1");
            options.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=1,id=blk0,bus=rp1", reconnectSeconds: 1);
            using GuestVm vm = await GuestVm.StartAsync(options, ct);
            await vm.RunCheckedAsync(BlkWriter.WaitForDisk, cancellationToken: ct);
            await BlkWriter.StartAsync(vm, ct);
            await BlkWriter.WaitForPassAsync(vm, 1, ct);

            // Pause and resume while the writer runs.
            await vm.PauseAsync(ct);
            await Task.Delay(1500, ct);
            await vm.ResumeAsync(ct);
            await BlkWriter.WaitForProgressAsync(vm, await BlkWriter.ProgressAsync(vm, ct), ct);

            // QEMU reports the stop and the start to the device through SET_STATUS (the driver-status
            // callback): 0 on the pause (the session stays), DRIVER_OK at boot and on resume.
            Assert.Contains("driver status Acknowledge, Driver, DriverOk, FeaturesOk (SET_STATUS)", daemon.Output, StringComparison.Ordinal);
            Assert.Contains("driver status Reset (SET_STATUS)", daemon.Output, StringComparison.Ordinal);

            // The daemon killed while the VM is paused and a new one started on the same socket and
            // image; QEMU reconnects, and on resume the rings restart on the new daemon (inflight
            // region handed back by QEMU). QEMU 7.2 cannot do this with any back-end: reconnecting
            // while the device is stopped skips the whole negotiation (no features, no memory
            // table), and qemu-storage-daemon fails the same way ("vu_panic: Invalid vring_addr
            // message"); docs/vm-lifecycle.md. On 7.2 the daemon is restarted while the VM runs.
            bool whilePaused = qemu.Version.Major >= 10;
            if (whilePaused)
            {
                await vm.PauseAsync(ct);
            }

            log.Add(daemon.Output);
            daemon.Kill();
            daemon.Dispose();
            daemon = SampleProcess.Start("vhost-user-blk", daemonArgs);
            Assert.True(daemon.WaitForOutput("front-end connected", TimeSpan.FromSeconds(30)), "QEMU did not reconnect to the restarted daemon\n" + daemon.Output);
            if (whilePaused)
            {
                await vm.ResumeAsync(ct);
            }

            await BlkWriter.WaitForProgressAsync(vm, await BlkWriter.ProgressAsync(vm, ct), ct);
            GuestCommandResult first = await BlkWriter.StopAndVerifyAsync(vm, ct);
            Assert.True(first.Value("same") == "yes", $"after pause/resume and a daemon restart: {first.Text}\n{vm.Describe()}\n{daemon.Output}");

            // A guest reset: device reset, rings set up again by the new driver, I/O works.
            await vm.ResetAsync(ct);
            await vm.RunCheckedAsync(BlkWriter.WaitForDisk, cancellationToken: ct);
            await BlkWriter.StartAsync(vm, ct);
            await BlkWriter.WaitForPassAsync(vm, 1, ct);
            GuestCommandResult second = await BlkWriter.StopAndVerifyAsync(vm, ct);
            Assert.True(second.Value("same") == "yes", $"after a reset: {second.Text}\n{vm.Describe()}\n{daemon.Output}");
            string expect = second.Value("expect")!;

            // Hot-unplug (the guest lets the disk go), the chardev removed (the daemon sees the
            // front-end leave), then a new chardev and the disk plugged back: same data, still writable.
            await vm.UnplugAsync("blk0", cancellationToken: ct);
            await vm.RunCheckedAsync("for i in $(seq 50); do [ -b /dev/vda ] || exit 0; sleep 0.1; done; echo /dev/vda still there; exit 1", cancellationToken: ct);
            await vm.Qmp.ExecuteAsync("chardev-remove", new JsonObject { ["id"] = "vu0" }, ct);
            Assert.True(daemon.WaitForOutput("disconnected (connection 1)", TimeSpan.FromSeconds(15)), daemon.Output);
            await vm.Qmp.ExecuteAsync("chardev-add", new JsonObject
            {
                ["id"] = "vu-replug",
                ["backend"] = new JsonObject
                {
                    ["type"] = "socket",
                    ["data"] = new JsonObject { ["addr"] = new JsonObject { ["type"] = "unix", ["data"] = new JsonObject { ["path"] = socket } }, ["server"] = false },
                },
            }, ct);
            await vm.Qmp.ExecuteAsync("device_add", new JsonObject { ["driver"] = "vhost-user-blk-pci", ["chardev"] = "vu-replug", ["id"] = "blk1", ["bus"] = "rp1", ["num-queues"] = 1 }, ct);
            GuestCommandResult replugged = await vm.RunCheckedAsync(
                $"""
                ( {BlkWriter.WaitForDisk} ) || exit 1
                echo disk=$(dd if=/dev/vda bs={BlkWriter.ChunkBytes} count={BlkWriter.Chunks} iflag=direct 2>/dev/null | md5sum | cut -c1-32)
                head -c 65536 /dev/urandom > /tmp/one; dd if=/tmp/one of=/dev/vda bs=65536 seek=1 oflag=direct conv=notrunc 2>/dev/null
                dd if=/dev/vda of=/tmp/back bs=65536 skip=1 count=1 iflag=direct 2>/dev/null; cmp /tmp/one /tmp/back && echo write=ok
                """,
                TimeSpan.FromSeconds(60),
                ct);
            Assert.Equal(expect, replugged.Value("disk"));
            Assert.Equal("ok", replugged.Value("write"));

            string everything = $"{vm.Describe()}\n--- daemon ---\n{string.Join("\n", log)}\n{daemon.Output}";
            TestContext.Current.TestOutputHelper?.WriteLine(everything);
            Assert.DoesNotContain("vhost_", vm.QemuErrors, StringComparison.Ordinal);
            Assert.DoesNotContain("fail:", daemon.Output, StringComparison.Ordinal);
            Assert.Equal(0, await vm.ShutdownAsync(ct));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"{e.Message}\n--- daemon (earlier) ---\n{string.Join("\n", log)}\n--- daemon ---\n{daemon.Output}", e);
        }
        finally
        {
            daemon.Dispose();
        }
    }
}
