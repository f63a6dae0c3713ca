using Vhost.GuestHarness;
using Vhost.IntegrationTests.Samples;

namespace Vhost.IntegrationTests.Iommu;

/// <summary>
/// The <c>vhost-user-blk</c> sample behind QEMU's emulated Intel vIOMMU: <c>-device
/// intel-iommu,device-iotlb=on</c>, <c>vhost-user-blk-pci,iommu_platform=on,ats=on</c>, the guest
/// booted with <c>intel_iommu=on iommu.strict=1</c>, so the driver maps every request's buffers
/// into IOVA space and unmaps them (an IOTLB invalidation reaching the daemon) as soon as the
/// request completes, while the other CPU's requests are in flight. QEMU answers the daemon's
/// IOTLB misses with updates; the data written through IOVAs is read back and found in the image.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlkViommuTests
{
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("10")]
    [InlineData("7.2")]
    public async Task Guest_behind_an_intel_vIOMMU_in_strict_mode_writes_and_reads_back_through_IOVAs(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        await GuestImage.GetOrSkipAsync(TestContext.Current.CancellationToken);
        using var dir = new TempDirectory("vhost-blk-iommu-");
        string disk = dir.CreateFile("disk.img", 16 << 20);
        string socket = Path.Combine(dir.Path, "blk.sock");
        using SampleProcess blk = SampleProcess.Start("vhost-user-blk", ["--socket-path", socket, "--blk-file", disk, "--num-queues", "2", "--direct"]);
        var options = new QemuGuestOptions
        {
            Qemu = qemu,
            MemoryMiB = 256,
            Cpus = 2,
            Timeout = TimeSpan.FromSeconds(150),
            Script = """
                . /run/vhosttest/lib.sh
                for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
                [ -b /dev/vda ] || { vt_fail blk-present "no /dev/vda: $(dmesg | grep -i -m3 -e dmar -e virtio)"; exit 1; }
                dev=$(basename $(readlink -f /sys/block/vda/device))
                vt_pass iommu-group "$([ -e /sys/block/vda/device/../iommu_group ] && echo yes || echo no)"
                vt_pass iommu-mode "$(dmesg | grep -m1 -o -e 'IOMMU enabled' -e 'DMAR: Intel(R) Virtualization Technology for Directed I/O')"
                vt_pass access-platform "$(cut -c34 /sys/block/vda/device/features)"
                dd if=/dev/urandom of=/tmp/pattern bs=65536 count=128 2>/dev/null
                taskset 1 dd if=/tmp/pattern of=/dev/vda bs=65536 count=64 oflag=direct 2>/tmp/e0 & a=$!
                taskset 2 dd if=/tmp/pattern of=/dev/vda bs=4096 skip=1024 seek=1024 count=1024 oflag=direct 2>/tmp/e1 & b=$!
                wait $a; ra=$?; wait $b; rb=$?
                if [ $ra = 0 ] && [ $rb = 0 ]; then vt_pass blk-write "two writers"; else vt_fail blk-write "dd exit $ra $rb: $(cat /tmp/e0 /tmp/e1)"; fi
                echo 3 > /proc/sys/vm/drop_caches
                taskset 1 dd if=/dev/vda of=/tmp/back0 bs=65536 count=64 iflag=direct 2>/tmp/e0 & a=$!
                taskset 2 dd if=/dev/vda of=/tmp/back1 bs=16384 skip=256 count=256 iflag=direct 2>/tmp/e1 & b=$!
                wait $a; ra=$?; wait $b; rb=$?
                if [ $ra = 0 ] && [ $rb = 0 ]; then vt_pass blk-read "two readers"; else vt_fail blk-read "dd exit $ra $rb: $(cat /tmp/e0 /tmp/e1)"; fi
                cat /tmp/back0 /tmp/back1 > /tmp/back
                if cmp -s /tmp/pattern /tmp/back; then vt_pass blk-readback "md5=$(md5sum < /tmp/pattern | cut -c1-32)"
                else vt_fail blk-readback "read-back differs: $(cmp /tmp/pattern /tmp/back 2>&1 | head -1)"; fi
                vt_pass io-errors "$(dmesg | grep -c -e 'I/O error' -e 'virtio_blk.*error')"
                """,
        };
        options.KernelArguments.Add("intel_iommu=on");
        options.KernelArguments.Add("iommu.strict=1");

        // The IOMMU comes before the devices it translates for; TCG has no in-kernel irqchip to split.
        options.AddArguments("-device", "intel-iommu,intremap=off,device-iotlb=on");
        options.AddVhostUserDevice("vhost-user-blk-pci", socket, "num-queues=2,disable-legacy=on,iommu_platform=on,ats=on");
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine($"guest {r.Elapsed.TotalSeconds:F1} s");
        Assert.True(r.Succeeded, r.Describe() + "\n" + blk.Output);
        Assert.Equal("yes", r.Find("iommu-group")?.Detail);
        Assert.Equal("1", r.Find("access-platform")?.Detail);
        Assert.Equal("0", r.Find("io-errors")?.Detail);
        string md5 = r.Find("blk-readback")?.Detail ?? throw new InvalidOperationException(r.Describe());

        // The daemon translated through the IOTLB (it logged the ack), and the pattern is in the image.
        Assert.Contains("VIRTIO_F_ACCESS_PLATFORM acked", blk.Output, StringComparison.Ordinal);
        blk.Kill();
        Assert.Equal(md5, "md5=" + BlkSampleTests.Md5OfPrefix(disk, 8 << 20));
        Assert.DoesNotContain("Iotlb", blk.Output, StringComparison.Ordinal);
    }
}
