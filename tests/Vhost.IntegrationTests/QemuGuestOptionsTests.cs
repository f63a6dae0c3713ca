using Vhost.GuestHarness;

namespace Vhost.IntegrationTests;

/// <summary>The QEMU command line the harness builds (no guest needed).</summary>
public sealed class QemuGuestOptionsTests
{
    private static readonly GuestImage Image = new("/repo", "/cache", "6.12-test", "/cache/vmlinuz", "/cache/initrd.gz", "/usr/bin/qemu-system-x86_64");
    private static readonly QemuBinary Qemu10 = new("/q10/qemu-system-x86_64", new Version(10, 0, 2), [], new Dictionary<string, string>());
    private static readonly QemuBinary Qemu72 = new("/usr/bin/qemu-system-x86_64", new Version(7, 2, 22), [], new Dictionary<string, string>());

    /// <summary>
    /// QEMU before 9.0 gets its RAM 8 KiB short of the asked size, off the 64-page grid, so its TCG
    /// migration takes the dirty-sync path that keeps tracking the guest's writes (QEMU 03bfc2188f);
    /// 9.0 and later get the size asked.
    /// </summary>
    [Theory]
    [InlineData(7, 512, "524280K")]
    [InlineData(8, 256, "262136K")]
    [InlineData(9, 256, "256M")]
    [InlineData(10, 1024, "1024M")]
    public void Ram_before_qemu_9_is_off_the_64_page_grid(int major, int mib, string expected)
    {
        Assert.Equal(expected, QemuGuestOptions.RamSize(mib, new Version(major, 0)));
        string size = QemuGuestOptions.RamSize(mib, new Version(major, 0));
        long bytes = size.EndsWith('K') ? long.Parse(size[..^1], System.Globalization.CultureInfo.InvariantCulture) * 1024 : long.Parse(size[..^1], System.Globalization.CultureInfo.InvariantCulture) << 20;
        Assert.Equal(0, bytes % 8192); // QEMU rounds -m up to 8 KiB
        Assert.Equal(major < 9, bytes % (64 * 4096) != 0);

        List<string> args = new QemuGuestOptions { MemoryMiB = mib, Qemu = major < 9 ? Qemu72 : Qemu10 }.BuildArguments(Image, "/w", null, null);
        string expectedForBinary = QemuGuestOptions.RamSize(mib, (major < 9 ? Qemu72 : Qemu10).Version);
        Assert.Equal(expectedForBinary, args[args.IndexOf("-m") + 1]);
        Assert.Contains($"memory-backend-memfd,id=vhost-mem,size={expectedForBinary},share=on", args);
    }

    [Fact]
    public void Defaults_boot_tcg_with_shared_memfd_ram_and_two_serial_ports()
    {
        List<string> args = new QemuGuestOptions { Qemu = Qemu10 }.BuildArguments(Image, "/w", null, null);
        Assert.Equal(
            [
                "-accel", "tcg", "-nodefaults",
                "-machine", "q35,memory-backend=vhost-mem",
                "-object", "memory-backend-memfd,id=vhost-mem,size=512M,share=on",
                "-m", "512M", "-smp", "1", "-display", "none", "-monitor", "none",
                "-serial", "file:/w/console.log", "-serial", "file:/w/output.log",
                "-kernel", "/cache/vmlinuz", "-initrd", "/cache/initrd.gz", "-no-reboot",
                "-append", "console=ttyS0 panic=-1 quiet vhosttest=boot",
            ],
            args);
    }

    [Fact]
    public void Script_and_host_root_add_fw_cfg_and_virtiofs()
    {
        var o = new QemuGuestOptions { Script = "true", HostRoot = true, MemoryMiB = 1024, Cpus = 2, Qemu = Qemu10 };
        o.KernelArguments.Add("loglevel=7");
        List<string> args = o.BuildArguments(Image, "/w", "/w/script,1.sh", "/w/hostroot.sock");
        string joined = string.Join(' ', args);
        Assert.Contains("-fw_cfg name=opt/vhosttest/script,file=/w/script,,1.sh", joined, StringComparison.Ordinal);
        Assert.Contains("-chardev socket,id=vhost-hostroot,path=/w/hostroot.sock -device vhost-user-fs-pci,chardev=vhost-hostroot,tag=hostroot", joined, StringComparison.Ordinal);
        Assert.Contains("size=1024M,share=on", joined, StringComparison.Ordinal);
        Assert.Contains("-smp 2", joined, StringComparison.Ordinal);
        Assert.Equal("console=ttyS0 panic=-1 quiet vhosttest=script vhostroot=hostroot loglevel=7", args[args.IndexOf("-append") + 1]);
    }

    [Fact]
    public void Vhost_user_devices_get_their_own_chardevs()
    {
        var o = new QemuGuestOptions();
        Assert.Equal("vu0", o.AddVhostUserDevice("vhost-user-blk-pci", "/t/blk,a.sock", "num-queues=2"));
        Assert.Equal("net1", o.AddVhostUserNet("/t/net.sock", "52:54:00:12:34:01", queues: 2, reconnectSeconds: 1));
        Assert.Equal("vu2", o.AddVhostUserDevice("vhost-user-rng-pci", "/t/rng.sock", reconnectSeconds: 3));
        Assert.Equal(
            [
                "-chardev", "socket,id=vu0,path=/t/blk,,a.sock", "-device", "vhost-user-blk-pci,chardev=vu0,num-queues=2",
                "-chardev", "socket,id=vu1,path=/t/net.sock,reconnect=1", "-netdev", "vhost-user,id=net1,chardev=vu1,queues=2",
                "-device", "virtio-net-pci,netdev=net1,mac=52:54:00:12:34:01,vectors=0",
                "-chardev", "socket,id=vu2,path=/t/rng.sock,reconnect=3", "-device", "vhost-user-rng-pci,chardev=vu2",
            ],
            o.ExtraArguments);
        List<string> args = o.BuildArguments(Image, "/w", null, null);
        Assert.Equal(o.ExtraArguments, args.Skip(args.Count - o.ExtraArguments.Count));
    }

    [Fact]
    public void Agent_adds_qmp_a_virtio_serial_port_and_lets_the_guest_reboot()
    {
        var o = new QemuGuestOptions { Agent = true, Incoming = true, Qemu = new QemuBinary("/q10/qemu", new Version(10, 0, 2), ["/q10/share"], new Dictionary<string, string>()) };
        o.Validate();
        List<string> args = o.BuildArguments(Image, "/w", null, null);
        string joined = string.Join(' ', args);
        Assert.Equal(["-L", "/q10/share"], args.Take(2));
        Assert.DoesNotContain("-no-reboot", args);
        Assert.Contains("-qmp unix:/w/qmp.sock,server=on,wait=off", joined, StringComparison.Ordinal);
        Assert.Contains("-device virtio-serial-pci,id=vhost-agent-bus -chardev socket,id=vhost-agent,path=/w/agent.sock,server=on,wait=off -device virtserialport,bus=vhost-agent-bus.0,chardev=vhost-agent,name=org.vhost.agent", joined, StringComparison.Ordinal);
        Assert.Contains("-incoming defer", joined, StringComparison.Ordinal);
        Assert.EndsWith("vhosttest=agent", args[args.IndexOf("-append") + 1], StringComparison.Ordinal);
        Assert.Equal("Agent", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Agent = true, Script = "true" }.Validate()).ParamName);
    }

    [Fact]
    public void Compose_script_sets_directory_and_quoted_environment()
    {
        var o = new QemuGuestOptions { Script = "echo $A", WorkingDirectory = "/work/it's here" };
        o.Environment["A"] = "x'y z";
        Assert.Equal(
            "cd '/work/it'\\''s here' || { echo \"cannot cd to /work/it's here\"; exit 97; }\nexport A='x'\\''y z'\necho $A\n",
            o.ComposeScript());
        Assert.Null(new QemuGuestOptions().ComposeScript());
    }

    [Fact]
    public void Validate_rejects_bad_settings()
    {
        Assert.Equal("MemoryMiB", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { MemoryMiB = 32 }.Validate()).ParamName);
        Assert.Equal("Cpus", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Cpus = 0 }.Validate()).ParamName);
        Assert.Equal("Timeout", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Timeout = TimeSpan.Zero }.Validate()).ParamName);
        Assert.Equal("Test", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Test = "../etc/passwd" }.Validate()).ParamName);
        Assert.Equal("Test", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Test = string.Empty }.Validate()).ParamName);
        Assert.Equal("HostRoot", Assert.Throws<ArgumentException>(() => new QemuGuestOptions { HostRoot = true }.Validate()).ParamName);

        var kernelArgs = new QemuGuestOptions();
        kernelArgs.KernelArguments.Add("two words");
        Assert.Equal("KernelArguments", Assert.Throws<ArgumentException>(kernelArgs.Validate).ParamName);

        var env = new QemuGuestOptions { Script = "true" };
        env.Environment["1BAD"] = "x";
        Assert.Equal("Environment", Assert.Throws<ArgumentException>(env.Validate).ParamName);

        new QemuGuestOptions { Test = "vhost-devices" }.Validate();
        new QemuGuestOptions { Script = "true", HostRoot = true }.Validate();
    }

    [Fact]
    public void Device_helpers_reject_bad_arguments()
    {
        var o = new QemuGuestOptions();
        Assert.Throws<ArgumentException>(() => o.AddVhostUserDevice(" ", "/s"));
        Assert.Throws<ArgumentException>(() => o.AddVhostUserDevice("vhost-user-blk-pci", string.Empty));
        Assert.Throws<ArgumentOutOfRangeException>(() => o.AddVhostUserDevice("vhost-user-blk-pci", "/s", reconnectSeconds: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => o.AddVhostUserNet("/s", "52:54:00:00:00:01", queues: 0));
        Assert.Empty(o.ExtraArguments);
    }
}
