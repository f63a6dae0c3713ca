using System.Globalization;

namespace Vhost.GuestHarness;

/// <summary>
/// What one guest boot runs and which devices it has. Pass to <see cref="QemuGuest.StartAsync"/>, <see cref="QemuGuest.RunAsync"/> or <see cref="QemuGuest.RunInGuestAsync"/>.
/// </summary>
/// <remarks>
/// The guest always gets: TCG, a q35 machine whose RAM is a shared memfd
/// (<c>memory-backend-memfd,share=on</c>, which vhost-user backends need to map guest memory),
/// no default devices or network, the console on the first serial port and the test output on
/// the second. Add vhost-user devices with <see cref="AddVhostUserDevice"/> or
/// <see cref="AddVhostUserNet"/>, anything else with <see cref="AddArguments"/>.
/// </remarks>
public sealed class QemuGuestOptions
{
    private readonly List<string> extraArguments = [];
    private int nextDeviceId;

    /// <summary>
    /// The built-in test to run (<c>tools/guest/tests/NAME.sh</c> in the initramfs); default
    /// <c>boot</c>. Ignored when <see cref="Script"/> is set.
    /// </summary>
    public string Test { get; set; } = "boot";

    /// <summary>
    /// A shell script for the guest to run instead of a built-in test, passed in through QEMU's
    /// fw_cfg. It runs under the initramfs's busybox <c>sh</c>, or under the host's <c>/bin/sh</c>
    /// when <see cref="HostRoot"/> is set. It may print result lines
    /// (<c>. /run/vhosttest/lib.sh; vt_pass NAME DETAIL</c>); its exit status becomes
    /// <see cref="GuestRunResult.ExitCode"/>.
    /// </summary>
    public string? Script { get; set; }

    /// <summary>
    /// Run the script chrooted in the host's root filesystem: <c>/</c> is exported by virtiofsd
    /// (read-only) and mounted under a tmpfs overlay, so the guest sees every host file (the
    /// .NET runtime, the test binaries) and its writes are discarded. Needs root on the host.
    /// </summary>
    public bool HostRoot { get; set; }

    /// <summary>The directory the script starts in (<c>cd</c>); default none (<c>/</c>).</summary>
    public string? WorkingDirectory { get; set; }

    /// <summary>Environment variables exported before the script runs.</summary>
    public IDictionary<string, string> Environment { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Guest RAM in MiB (a shared memfd); default 512. QEMU before 9.0 gets 8 KiB less (<see cref="RamSize"/>).</summary>
    public int MemoryMiB { get; set; } = 512;

    /// <summary>Virtual CPUs; default 1 (on a 2-core host, more is slower under TCG).</summary>
    public int Cpus { get; set; } = 1;

    /// <summary>The hard limit for the whole boot; when it passes the QEMU process tree is killed. Default 90 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>Extra kernel command-line words (after the harness's own).</summary>
    public IList<string> KernelArguments { get; } = new List<string>();

    /// <summary>
    /// Run the guest agent instead of a script (<see cref="GuestVm"/> uses it): the guest listens
    /// for commands on a virtio-serial port, so the host can act on a running guest (pause it,
    /// migrate it, reset it, hot-plug its devices) and run commands in it before, between and
    /// after. Also turns on <see cref="Qmp"/> and lets the guest reboot (no <c>-no-reboot</c>), so
    /// a <c>system_reset</c> reboots it.
    /// </summary>
    public bool Agent { get; set; }

    /// <summary>Give QEMU a QMP socket (<see cref="QemuGuest.QmpSocketPath"/>).</summary>
    public bool Qmp { get; set; }

    /// <summary>Start as the destination of an incoming migration (<c>-incoming defer</c>; <see cref="GuestVm.MigrateAsync"/> sets it).</summary>
    public bool Incoming { get; set; }

    /// <summary>The QEMU to run; default <see cref="QemuBinary.Installed"/> (or <c>VHOST_QEMU</c>).</summary>
    public QemuBinary? Qemu { get; set; }

    /// <summary>Extra QEMU arguments added so far, in order.</summary>
    public IReadOnlyList<string> ExtraArguments => extraArguments;

    /// <summary>Adds raw QEMU arguments (e.g. <c>-device</c>, <c>virtio-rng-pci</c>).</summary>
    /// <param name="arguments">The arguments, one array element per argv word.</param>
    public void AddArguments(params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        extraArguments.AddRange(arguments);
    }

    /// <summary>
    /// Adds a vhost-user device whose backend listens on <paramref name="socketPath"/>:
    /// <c>-chardev socket,id=ID,path=SOCKET[,reconnect=N] -device DRIVER,chardev=ID[,PROPERTIES]</c>.
    /// </summary>
    /// <param name="driver">The QEMU device, e.g. <c>vhost-user-blk-pci</c>, <c>vhost-user-rng-pci</c>, <c>vhost-user-fs-pci</c>.</param>
    /// <param name="socketPath">The backend's listening Unix socket.</param>
    /// <param name="properties">Extra device properties, comma-separated (e.g. <c>num-queues=2</c>), or <see langword="null"/>.</param>
    /// <param name="reconnectSeconds">When non-zero, QEMU reconnects to a restarted backend after this many seconds.</param>
    /// <param name="server">QEMU listens on <paramref name="socketPath"/> (<c>server=on,wait=off</c>) and the back-end connects to it (the back-end's client mode); it accepts the back-end again after it went away.</param>
    /// <param name="wait">With <paramref name="server"/>: QEMU waits for the back-end to connect before it creates the device (<c>wait=on</c>; vhost-user-rng needs it, it does not wait by itself).</param>
    /// <returns>The chardev id.</returns>
    public string AddVhostUserDevice(string driver, string socketPath, string? properties = null, int reconnectSeconds = 0, bool server = false, bool wait = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(driver);
        if (server && reconnectSeconds > 0)
        {
            throw new ArgumentException("reconnect= is a client-mode chardev option; a server chardev accepts the back-end again by itself", nameof(reconnectSeconds));
        }

        string chardev = AddVhostUserChardev(socketPath, reconnectSeconds, server ? (wait ? ",server=on,wait=on" : ",server=on,wait=off") : string.Empty);
        extraArguments.Add("-device");
        extraArguments.Add($"{driver},chardev={chardev}{Suffix(properties)}");
        return chardev;
    }

    /// <summary>
    /// Adds a virtio-net NIC whose vhost-user backend listens on <paramref name="socketPath"/>:
    /// <c>-netdev vhost-user,chardev=ID -device virtio-net-pci,netdev=...,mac=MAC,vectors=0</c>.
    /// <c>vectors=0</c> (INTx) is required: QEMU 7.2 under TCG crashes in
    /// <c>msix_set_vector_notifiers</c> when vhost-user net starts with MSI-X.
    /// </summary>
    /// <param name="socketPath">The backend's listening Unix socket.</param>
    /// <param name="macAddress">The NIC's MAC address, e.g. <c>52:54:00:12:34:01</c>.</param>
    /// <param name="properties">Extra virtio-net-pci properties (e.g. <c>mq=on</c>), or <see langword="null"/>.</param>
    /// <param name="queues">Queue pairs of the netdev (multi-queue when above 1).</param>
    /// <param name="reconnectSeconds">When non-zero, QEMU reconnects to a restarted backend after this many seconds.</param>
    /// <param name="server">QEMU listens on <paramref name="socketPath"/> (<c>server=on,wait=off</c>; the netdev still waits for the back-end to connect) and the back-end connects to it.</param>
    /// <returns>The netdev id.</returns>
    public string AddVhostUserNet(string socketPath, string macAddress, string? properties = null, int queues = 1, int reconnectSeconds = 0, bool server = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(macAddress);
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        string chardev = AddVhostUserChardev(socketPath, reconnectSeconds, server ? ",server=on,wait=off" : string.Empty);
        string netdev = "net" + chardev.Substring(2);
        extraArguments.Add("-netdev");
        extraArguments.Add(FormattableString.Invariant($"vhost-user,id={netdev},chardev={chardev}{(queues > 1 ? $",queues={queues}" : string.Empty)}"));
        extraArguments.Add("-device");
        extraArguments.Add($"virtio-net-pci,netdev={netdev},mac={macAddress},vectors=0{Suffix(properties)}");
        return netdev;
    }

    /// <summary>Escapes a value for a QEMU option string: a comma is written twice.</summary>
    /// <param name="value">The value (typically a path).</param>
    /// <returns>The escaped value.</returns>
    public static string EscapeOptionValue(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Replace(",", ",,", StringComparison.Ordinal);
    }

    /// <summary>Validates the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    internal void Validate()
    {
        if (MemoryMiB < 64)
        {
            throw new ArgumentException($"MemoryMiB must be at least 64, not {MemoryMiB}.", nameof(MemoryMiB));
        }

        if (Cpus < 1)
        {
            throw new ArgumentException($"Cpus must be at least 1, not {Cpus}.", nameof(Cpus));
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Timeout must be positive.", nameof(Timeout));
        }

        if (Script is null && (Test.Length == 0 || Test.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')))
        {
            throw new ArgumentException($"Test must be a built-in test name ([A-Za-z0-9_-]+), not '{Test}'.", nameof(Test));
        }

        if (Agent && (Script is not null || HostRoot))
        {
            throw new ArgumentException("Agent runs the guest agent: it takes neither a Script nor HostRoot.", nameof(Agent));
        }

        if (HostRoot && Script is null)
        {
            throw new ArgumentException("HostRoot needs a Script (built-in tests run in the initramfs).", nameof(HostRoot));
        }

        foreach (string word in KernelArguments)
        {
            if (word.Length == 0 || word.Any(char.IsWhiteSpace))
            {
                throw new ArgumentException($"A kernel argument must be one non-empty word: '{word}'.", nameof(KernelArguments));
            }
        }

        foreach (string name in Environment.Keys)
        {
            if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') || char.IsAsciiDigit(name[0]))
            {
                throw new ArgumentException($"Not a shell variable name: '{name}'.", nameof(Environment));
            }
        }
    }

    /// <summary>The script the guest runs: working directory and environment, then <see cref="Script"/>.</summary>
    internal string? ComposeScript()
    {
        if (Script is null)
        {
            return null;
        }

        var lines = new List<string>();
        if (WorkingDirectory is not null)
        {
            lines.Add($"cd {ShellQuote(WorkingDirectory)} || {{ echo \"cannot cd to {WorkingDirectory.Replace("\"", string.Empty, StringComparison.Ordinal)}\"; exit 97; }}");
        }

        foreach ((string name, string value) in Environment)
        {
            lines.Add($"export {name}={ShellQuote(value)}");
        }

        lines.Add(Script);
        return string.Join('\n', lines) + "\n";
    }

    /// <summary>
    /// The guest RAM size QEMU is given: <paramref name="memoryMiB"/>, less 8 KiB on QEMU before 9.0.
    /// Those QEMUs lose guest writes in a TCG live migration: the dirty-bitmap sync takes a fast
    /// path for a RAM block whose size is a multiple of 64 pages, and that path clears the pages'
    /// dirty bits without re-arming TCG's write tracking (the vCPUs' TLB entries), so a page the
    /// guest writes again after a sync is never sent and the destination guest runs on stale
    /// memory (its kernel crashes: list corruption, a stack-protector panic, a fetch from a stale
    /// pointer). QEMU commit 03bfc2188f ("physmem: Fix migration dirty bitmap coherency with TCG
    /// memory access", 9.0) fixed it; a size off the 64-page grid takes the slow path, which
    /// re-arms the tracking (docs/vm-lifecycle.md has the measurements).
    /// </summary>
    /// <param name="memoryMiB">The RAM the test asked for.</param>
    /// <param name="qemuVersion">The QEMU that runs the guest.</param>
    /// <returns>A QEMU size (<c>512M</c>, or <c>524280K</c> before 9.0).</returns>
    internal static string RamSize(int memoryMiB, Version qemuVersion)
        => qemuVersion.Major < 9
            ? ((memoryMiB * 1024) - 8).ToString(CultureInfo.InvariantCulture) + "K"
            : memoryMiB.ToString(CultureInfo.InvariantCulture) + "M";

    /// <summary>The full QEMU argument list.</summary>
    internal List<string> BuildArguments(GuestImage image, string workDirectory, string? scriptFile, string? virtiofsSocket)
    {
        QemuBinary qemu = Qemu ?? QemuBinary.Installed;
        string mem = RamSize(MemoryMiB, qemu.Version);
        var args = new List<string>();
        foreach (string dir in qemu.DataDirectories)
        {
            args.Add("-L");
            args.Add(dir);
        }

        args.AddRange(
        [
            // More than one vCPU: one TCG thread for all of them. With a thread per vCPU (MTTCG)
            // QEMU 7.2 sometimes lets a vCPU run code the kernel is patching on another one (an
            // "Oops: int3" in the guest at boot, seen under load); the tests need several vCPUs for
            // queue mapping, not for parallelism.
            "-accel", Cpus > 1 ? "tcg,thread=single" : "tcg",
            "-nodefaults",
            "-machine", "q35,memory-backend=vhost-mem",
            "-object", $"memory-backend-memfd,id=vhost-mem,size={mem},share=on",
            "-m", mem,
            "-smp", Cpus.ToString(CultureInfo.InvariantCulture),
            "-display", "none",
            "-monitor", "none",
            "-serial", "file:" + EscapeOptionValue(Path.Combine(workDirectory, ConsoleLogName)),
            "-serial", "file:" + EscapeOptionValue(Path.Combine(workDirectory, OutputLogName)),
            "-kernel", image.KernelPath,
            "-initrd", image.InitrdPath,
        ]);
        if (!Agent)
        {
            args.Add("-no-reboot");
        }

        if (Qmp || Agent)
        {
            args.Add("-qmp");
            args.Add("unix:" + EscapeOptionValue(Path.Combine(workDirectory, QmpSocketName)) + ",server=on,wait=off");
        }

        if (Agent)
        {
            // The agent's command channel: a virtio-serial port backed by a listening socket (the
            // host connects; QEMU reads from it only while the guest has the port open).
            args.AddRange(
            [
                "-device", "virtio-serial-pci,id=vhost-agent-bus",
                "-chardev", "socket,id=vhost-agent,path=" + EscapeOptionValue(Path.Combine(workDirectory, AgentSocketName)) + ",server=on,wait=off",
                "-device", "virtserialport,bus=vhost-agent-bus.0,chardev=vhost-agent,name=" + AgentPortName,
            ]);
        }

        if (Incoming)
        {
            args.Add("-incoming");
            args.Add("defer");
        }

        var cmdline = new List<string> { "console=ttyS0", "panic=-1", "quiet" };
        cmdline.Add("vhosttest=" + (Agent ? "agent" : scriptFile is null ? Test : "script"));
        if (scriptFile is not null)
        {
            args.Add("-fw_cfg");
            args.Add("name=opt/vhosttest/script,file=" + EscapeOptionValue(scriptFile));
        }

        if (virtiofsSocket is not null)
        {
            args.Add("-chardev");
            args.Add("socket,id=vhost-hostroot,path=" + EscapeOptionValue(virtiofsSocket));
            args.Add("-device");
            args.Add("vhost-user-fs-pci,chardev=vhost-hostroot,tag=" + HostRootTag);
            cmdline.Add("vhostroot=" + HostRootTag);
        }

        cmdline.AddRange(KernelArguments);
        args.Add("-append");
        args.Add(string.Join(' ', cmdline));
        args.AddRange(extraArguments);
        return args;
    }

    /// <summary>The console log's file name in the work directory.</summary>
    internal const string ConsoleLogName = "console.log";

    /// <summary>The output log's file name in the work directory.</summary>
    internal const string OutputLogName = "output.log";

    /// <summary>The QMP socket's name in the work directory.</summary>
    internal const string QmpSocketName = "qmp.sock";

    /// <summary>The agent socket's name in the work directory.</summary>
    internal const string AgentSocketName = "agent.sock";

    /// <summary>The virtio-serial port the guest agent reads (tools/guest/tests/agent.sh).</summary>
    internal const string AgentPortName = "org.vhost.agent";

    /// <summary>The virtiofs tag of the host root.</summary>
    internal const string HostRootTag = "hostroot";

    /// <summary>Quotes a string for a POSIX shell.</summary>
    internal static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private string AddVhostUserChardev(string socketPath, int reconnectSeconds, string serverOptions = "")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(socketPath);
        ArgumentOutOfRangeException.ThrowIfNegative(reconnectSeconds);
        string id = FormattableString.Invariant($"vu{nextDeviceId++}");
        extraArguments.Add("-chardev");
        extraArguments.Add(FormattableString.Invariant(
            $"socket,id={id},path={EscapeOptionValue(socketPath)}{(reconnectSeconds > 0 ? $",reconnect={reconnectSeconds}" : string.Empty)}{serverOptions}"));
        return id;
    }

    private static string Suffix(string? properties) =>
        string.IsNullOrEmpty(properties) ? string.Empty : "," + properties.TrimStart(',');
}
