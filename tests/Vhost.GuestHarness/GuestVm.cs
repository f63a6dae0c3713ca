using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Vhost.GuestHarness;

/// <summary>
/// A test guest that lives through a VM's whole life: it runs the guest agent
/// (<c>tools/guest/tests/agent.sh</c>), so the test runs commands in it whenever it likes
/// (<see cref="RunAsync"/>), and drives QEMU through QMP in between: pause and resume, reset,
/// hot-unplug and replug, and live migration to a second QEMU (<see cref="MigrateAsync"/>), after
/// which the same object drives the destination. The guest's output of every QEMU it ran on is
/// kept in one <see cref="Transcript"/>.
/// </summary>
/// <example>
/// <code>
/// using GuestVm vm = await GuestVm.StartAsync(Options(sourceSocket), ct);
/// await vm.RunCheckedAsync("dd if=/dev/urandom of=/dev/vda bs=4k count=16 oflag=direct");
/// await vm.MigrateAsync(Options(destinationSocket), ct);
/// await vm.RunCheckedAsync("md5sum /dev/vda");
/// </code>
/// </example>
public sealed class GuestVm : IDisposable
{
    private const string Ready = "VHOSTAGENT-READY";
    private const string Done = "VHOSTAGENT-DONE ";
    private const string Out = "VHOSTAGENT-OUT ";
    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(120);

    private readonly GuestImage _image;
    private readonly List<string> _transcript = [];
    private readonly StringBuilder _history = new();
    private readonly StringBuilder _retiredErrors = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private QemuGuest _qemu;
    private QmpClient _qmp;
    private Socket? _agent;
    private OutputTail _tail;
    private int _scanned;
    private int _boots;
    private int _nextId = 1;
    private bool _disposed;

    private GuestVm(GuestImage image, QemuGuest qemu, QmpClient qmp)
    {
        _image = image;
        _qemu = qemu;
        _qmp = qmp;
        _tail = new OutputTail(qemu.OutputLogPath);
    }

    /// <summary>The QEMU the guest runs on now.</summary>
    public QemuGuest Qemu => _qemu;

    /// <summary>The QMP client of the current QEMU.</summary>
    public QmpClient Qmp => _qmp;

    /// <summary>How many times the guest booted (a reset adds one).</summary>
    public int Boots => _boots;

    /// <summary>Every output line of the guest so far, across migrations.</summary>
    public IReadOnlyList<string> Transcript
    {
        get
        {
            Poll();
            return [.. _transcript];
        }
    }

    /// <summary>What every QEMU this VM ran on printed on stderr (the retired ones first), to check for vhost errors.</summary>
    public string QemuErrors => _retiredErrors + _qemu.QemuErrors;

    /// <summary>Migrations done, one line each: QEMU's figures (total time, downtime, RAM sent).</summary>
    public IList<string> MigrationLog { get; } = new List<string>();

    /// <summary>Boots a guest running the agent and waits until the agent listens. Skips the test when the guest cannot be had.</summary>
    /// <param name="options">Memory, CPUs, devices, QEMU binary (<see cref="QemuGuestOptions.Agent"/> is set here).</param>
    /// <param name="cancellationToken">Cancels the boot.</param>
    /// <returns>The running guest.</returns>
    public static async Task<GuestVm> StartAsync(QemuGuestOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        GuestImage image = await GuestImage.GetOrSkipAsync(cancellationToken).ConfigureAwait(false);
        options.Agent = true;
        QemuGuest qemu = await QemuGuest.StartAsync(image, options, cancellationToken).ConfigureAwait(false);
        QmpClient? qmp = null;
        try
        {
            qmp = await QmpClient.ConnectAsync(qemu.QmpSocketPath, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            var vm = new GuestVm(image, qemu, qmp);
            try
            {
                await vm.WaitForBootAsync(1, cancellationToken).ConfigureAwait(false);
                return vm;
            }
            catch
            {
                vm.Dispose();
                throw;
            }
        }
        catch when (qmp is null)
        {
            qemu.Dispose();
            throw;
        }
    }

    /// <summary>Runs a shell command in the guest (busybox <c>sh -c</c>) and waits for it.</summary>
    /// <param name="command">The command; may span lines.</param>
    /// <param name="timeout">How long it may take; default 60 s.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>Its exit status and output.</returns>
    /// <exception cref="TimeoutException">It did not finish in time, or the guest stopped answering.</exception>
    /// <exception cref="InvalidOperationException">QEMU exited, or the guest rebooted meanwhile.</exception>
    public async Task<GuestCommandResult> RunAsync(string command, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        ObjectDisposedException.ThrowIf(_disposed, this);
        int id = _nextId++;
        int boots = _boots;
        await SendAsync($"{id.ToString(CultureInfo.InvariantCulture)} {Convert.ToBase64String(Encoding.UTF8.GetBytes(command))}\n", cancellationToken).ConfigureAwait(false);
        string done = Done + id.ToString(CultureInfo.InvariantCulture) + " ";
        string outPrefix = Out + id.ToString(CultureInfo.InvariantCulture) + " ";
        var output = new List<string>();
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        int from = _transcript.Count;
        while (true)
        {
            Poll();
            for (; from < _transcript.Count; from++)
            {
                string line = _transcript[from];
                if (line.StartsWith(outPrefix, StringComparison.Ordinal))
                {
                    output.Add(line[outPrefix.Length..]);
                }
                else if (line.StartsWith(done, StringComparison.Ordinal))
                {
                    var result = new GuestCommandResult(command, int.Parse(line[done.Length..], CultureInfo.InvariantCulture), output);
                    Note($"guest$ {FirstLine(command)} -> exit {result.ExitCode}");
                    return result;
                }
            }

            if (_boots != boots)
            {
                throw new InvalidOperationException($"the guest rebooted while running '{FirstLine(command)}'\n{Describe()}");
            }

            ThrowIfQemuExited($"while running '{FirstLine(command)}'");
            if (DateTime.UtcNow > deadline)
            {
                string vcpus = await DescribeVcpusAsync().ConfigureAwait(false);
                throw new TimeoutException($"'{FirstLine(command)}' did not finish within {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:0} s\n{vcpus}{Describe()}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a command and throws when it exits non-zero.</summary>
    /// <param name="command">The command.</param>
    /// <param name="timeout">How long it may take; default 60 s.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>Its result (exit status 0).</returns>
    /// <exception cref="InvalidOperationException">It exited non-zero (the message has its output).</exception>
    public async Task<GuestCommandResult> RunCheckedAsync(string command, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        GuestCommandResult r = await RunAsync(command, timeout, cancellationToken).ConfigureAwait(false);
        return r.ExitCode == 0 ? r : throw new InvalidOperationException($"guest command exited with {r.ExitCode}: {command}\n{r.Text}\n{Describe()}");
    }

    /// <summary>Pauses the VM (QMP <c>stop</c>).</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task.</returns>
    public async Task PauseAsync(CancellationToken cancellationToken = default)
    {
        await _qmp.ExecuteAsync("stop", cancellationToken: cancellationToken).ConfigureAwait(false);
        Note("qmp stop");
    }

    /// <summary>Resumes the VM (QMP <c>cont</c>).</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task.</returns>
    public async Task ResumeAsync(CancellationToken cancellationToken = default)
    {
        await _qmp.ExecuteAsync("cont", cancellationToken: cancellationToken).ConfigureAwait(false);
        Note("qmp cont");
    }

    /// <summary>Resets the VM (QMP <c>system_reset</c>) and waits until the guest booted again and its agent listens.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task.</returns>
    public async Task ResetAsync(CancellationToken cancellationToken = default)
    {
        int boots = _boots;
        await _qmp.ExecuteAsync("system_reset", cancellationToken: cancellationToken).ConfigureAwait(false);
        Note("qmp system_reset");
        await WaitForBootAsync(boots + 1, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hot-unplugs a device (QMP <c>device_del</c>) and waits for QEMU's <c>DEVICE_DELETED</c> (the guest let it go).</summary>
    /// <param name="id">The device's id.</param>
    /// <param name="timeout">How long the guest may take; default 30 s.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task.</returns>
    public async Task UnplugAsync(string id, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        int seen = _qmp.Events.Count;
        await _qmp.ExecuteAsync("device_del", new JsonObject { ["id"] = id }, cancellationToken).ConfigureAwait(false);
        await _qmp.WaitForEventAsync("DEVICE_DELETED", timeout ?? TimeSpan.FromSeconds(30), seen, e => (string?)e["data"]?["device"] == id, cancellationToken).ConfigureAwait(false);
        Note($"qmp device_del {id}: deleted");
    }

    /// <summary>
    /// Live-migrates the guest to a new QEMU started with <paramref name="destination"/> (same
    /// machine and devices, its own back-end sockets), through a Unix socket, precopy. Returns
    /// once the destination runs the guest and the source QEMU has quit; from then on this object
    /// drives the destination.
    /// </summary>
    /// <param name="destination">The destination's options (agent, QMP and <c>-incoming defer</c> are set here; the QEMU binary defaults to the source's).</param>
    /// <param name="timeout">How long the migration may take; default 180 s.</param>
    /// <param name="beforeSwitch">Called after the migration completed and before the source QEMU quits (e.g. to check the source's back-end).</param>
    /// <param name="whileMigrating">
    /// Awaited right after QEMU started migrating, while the guest still runs on the source: the
    /// test may run guest commands and steer QEMU (<see cref="Qmp"/>: <c>query-migrate</c>,
    /// <c>migrate-set-parameters</c>) before the harness waits for the end.
    /// </param>
    /// <param name="parameters">QEMU migration parameters that replace the harness's (no bandwidth cap, 300 ms downtime), e.g. a lower <c>max-bandwidth</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <param name="postcopy">
    /// Postcopy: the <c>postcopy-ram</c> capability on both QEMUs, and <c>migrate-start-postcopy</c>
    /// right after <paramref name="whileMigrating"/> (the destination then runs the guest while its
    /// memory still arrives; its pages are fetched when touched).
    /// </param>
    /// <returns>QEMU's figures of the migration (<c>query-migrate</c>).</returns>
    /// <exception cref="InvalidOperationException">The migration failed (QEMU's reason, both QEMUs' stderr).</exception>
    public async Task<JsonObject> MigrateAsync(QemuGuestOptions destination, TimeSpan? timeout = null, Func<Task>? beforeSwitch = null, Func<Task>? whileMigrating = null, JsonObject? parameters = null, CancellationToken cancellationToken = default, bool postcopy = false)
    {
        ArgumentNullException.ThrowIfNull(destination);
        destination.Agent = true;
        destination.Incoming = true;
        destination.Qemu ??= _qemu.Qemu;
        QemuGuest target = await QemuGuest.StartAsync(_image, destination, cancellationToken).ConfigureAwait(false);
        QmpClient? targetQmp = null;
        try
        {
            targetQmp = await QmpClient.ConnectAsync(target.QmpSocketPath, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            string uri = "unix:" + Path.Combine(target.WorkDirectory, "migrate.sock");
            var capabilities = new JsonObject { ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "postcopy-ram", ["state"] = true }) };
            if (postcopy)
            {
                await targetQmp.ExecuteAsync("migrate-set-capabilities", capabilities.DeepClone().AsObject(), cancellationToken).ConfigureAwait(false);
                await _qmp.ExecuteAsync("migrate-set-capabilities", capabilities, cancellationToken).ConfigureAwait(false);
            }

            await targetQmp.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = uri }, cancellationToken).ConfigureAwait(false);

            // Loopback: no bandwidth cap; under TCG the guest dirties pages slowly, so a 300 ms
            // downtime converges in a few iterations.
            var settings = new JsonObject { ["max-bandwidth"] = 8L << 30, ["downtime-limit"] = 300 };
            foreach ((string name, JsonNode? value) in parameters ?? [])
            {
                settings[name] = value?.DeepClone();
            }

            await _qmp.ExecuteAsync("migrate-set-parameters", settings, cancellationToken).ConfigureAwait(false);
            Note($"qmp migrate {uri} ({_qemu.Qemu.Version} -> {target.Qemu.Version})");
            await _qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = uri }, cancellationToken).ConfigureAwait(false);
            if (whileMigrating is not null)
            {
                await whileMigrating().ConfigureAwait(false);
            }

            if (postcopy)
            {
                await _qmp.ExecuteAsync("migrate-start-postcopy", cancellationToken: cancellationToken).ConfigureAwait(false);
                Note("qmp migrate-start-postcopy");
            }

            DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(180));
            JsonObject info;
            while (true)
            {
                info = (JsonObject)(await _qmp.ExecuteAsync("query-migrate", cancellationToken: cancellationToken).ConfigureAwait(false))!;
                string status = (string?)info["status"] ?? "?";
                if (status == "completed")
                {
                    break;
                }

                if (status is "failed" or "cancelled")
                {
                    throw new InvalidOperationException($"migration {status}: {(string?)info["error-desc"]}\nsource QEMU: {_qemu.QemuErrors}\ndestination QEMU: {target.QemuErrors}\n{Describe()}");
                }

                if (target.HasExited)
                {
                    throw new InvalidOperationException($"the destination QEMU exited during the migration ({status}): {target.QemuErrors}\nsource QEMU: {_qemu.QemuErrors}\n{Describe()}");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"migration still {status} after {(timeout ?? TimeSpan.FromSeconds(180)).TotalSeconds:0} s: {info.ToJsonString()}\n{Describe()}");
                }

                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }

            // The destination runs the guest on its own once the state has arrived.
            while ((string?)(await targetQmp.ExecuteAsync("query-status", cancellationToken: cancellationToken).ConfigureAwait(false))?["status"] != "running")
            {
                if (target.HasExited || DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException($"the destination did not start running after the migration: {target.QemuErrors}\n{Describe()}");
                }

                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            string figures = string.Create(CultureInfo.InvariantCulture, $"total {(long?)info["total-time"]} ms, downtime {(long?)info["downtime"]} ms, setup {(long?)info["setup-time"]} ms, ram {((long?)info["ram"]?["transferred"] ?? 0) >> 20} MiB in {(long?)info["ram"]?["dirty-sync-count"]} passes{(postcopy ? $", {(long?)info["ram"]?["postcopy-requests"]} postcopy page requests" : "")}");
            MigrationLog.Add(figures);
            Note("migration completed: " + figures);
            if (beforeSwitch is not null)
            {
                await beforeSwitch().ConfigureAwait(false);
            }

            // The source is paused for good now: take its last output, then let it go.
            Poll();
            _tail.ReadNew(_transcript, flush: true);
            try
            {
                await _qmp.ExecuteAsync("quit", cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // It closed the socket while quitting.
            }

            Retire();
            _qemu = target;
            _qmp = targetQmp;
            _tail = new OutputTail(target.OutputLogPath);
            return info;
        }
        catch
        {
            targetQmp?.Dispose();
            AppendHistory("destination", target);
            target.Dispose();
            throw;
        }
    }

    /// <summary>Ends the agent (the guest powers off) and waits for QEMU to exit.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>QEMU's exit status.</returns>
    public async Task<int> ShutdownAsync(CancellationToken cancellationToken = default)
    {
        await SendAsync("exit\n", cancellationToken).ConfigureAwait(false);
        GuestRunResult r = await _qemu.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        Poll();
        return r.QemuExitCode;
    }

    /// <summary>
    /// For a guest that stopped answering: QEMU's run state and each vCPU's registers, sampled twice
    /// a second apart (a RIP that moves is a guest that spins, one that stays is a halted or hung
    /// vCPU). Never throws: what QEMU does not answer within a few seconds is said instead.
    /// </summary>
    private async Task<string> DescribeVcpusAsync()
    {
        var sb = new StringBuilder("--- vCPUs (QMP) ---\n");
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            sb.Append("status: ").Append((await _qmp.ExecuteAsync("query-status", cancellationToken: cts.Token).ConfigureAwait(false))?.ToJsonString()).Append('\n');
            for (int sample = 1; sample <= 2; sample++)
            {
                string text = await _qmp.HumanAsync("info registers -a", cts.Token).ConfigureAwait(false);
                sb.Append($"sample {sample}:\n");
                foreach (string line in text.Split('\n').Where(l => l.StartsWith("CPU#", StringComparison.Ordinal) || l.StartsWith("RAX=", StringComparison.Ordinal) || l.StartsWith("RIP=", StringComparison.Ordinal) || l.StartsWith("CR0=", StringComparison.Ordinal)))
                {
                    sb.Append(line).Append('\n');
                }

                if (sample == 1)
                {
                    await Task.Delay(1000, cts.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            sb.Append("(QEMU did not answer: ").Append(e.Message).Append(")\n");
        }

        return sb.ToString();
    }

    /// <summary>
    /// For assertion messages: the harness's history (commands, QMP actions), the last output
    /// lines, the guest console's tail and what each QEMU printed.
    /// </summary>
    /// <returns>The description.</returns>
    public string Describe()
    {
        Poll();
        var sb = new StringBuilder();
        sb.Append("--- history ---\n").Append(_history);
        sb.Append("--- guest output (last 60 lines) ---\n");
        foreach (string line in _transcript.Skip(Math.Max(0, _transcript.Count - 60)))
        {
            sb.Append(line).Append('\n');
        }

        AppendHistory("current", _qemu, sb);
        return sb.ToString();
    }

    /// <summary>Kills QEMU (every one this VM ran on) and removes their work directories.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _agent?.Dispose();
        _qmp.Dispose();
        _qemu.Dispose();
    }

    private async Task WaitForBootAsync(int boots, CancellationToken cancellationToken)
    {
        DateTime deadline = DateTime.UtcNow + BootTimeout;
        while (_boots < boots)
        {
            Poll();
            ThrowIfQemuExited("while booting");
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the guest agent did not start within {BootTimeout.TotalSeconds:0} s\n{Describe()}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        Note($"boot {boots}: agent ready");
    }

    private async Task SendAsync(string line, CancellationToken cancellationToken)
    {
        if (_agent is null)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(_qemu.AgentSocketPath), cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            _agent = socket;
        }

        byte[] bytes = Encoding.UTF8.GetBytes(line);
        await _agent.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
    }

    private void Poll()
    {
        _tail.ReadNew(_transcript);
        for (; _scanned < _transcript.Count; _scanned++)
        {
            if (_transcript[_scanned] == Ready)
            {
                _boots++;
            }
        }
    }

    private void ThrowIfQemuExited(string when)
    {
        if (_qemu.HasExited)
        {
            Poll();
            throw new InvalidOperationException($"QEMU exited {when}\n{Describe()}");
        }
    }

    /// <summary>Lets the current QEMU go after a migration (its agent connection with it).</summary>
    private void Retire()
    {
        AppendHistory("source", _qemu);
        _retiredErrors.Append(_qemu.QemuErrors);
        _agent?.Dispose();
        _agent = null;
        _qmp.Dispose();
        _qemu.Dispose();
    }

    private void AppendHistory(string role, QemuGuest qemu) => AppendHistory(role, qemu, _history);

    private static void AppendHistory(string role, QemuGuest qemu, StringBuilder sb)
    {
        sb.Append("--- ").Append(role).Append(' ').Append(qemu.Qemu.Version).Append(" stderr ---\n").Append(qemu.QemuErrors);
        string text = File.Exists(qemu.ConsoleLogPath) ? File.ReadAllText(qemu.ConsoleLogPath) : string.Empty;
        string? crash = FirstKernelCrash(text);
        if (crash is not null)
        {
            sb.Append("--- ").Append(role).Append(" guest kernel crash (first lines) ---\n").Append(crash).Append('\n');
        }

        sb.Append("--- ").Append(role).Append(" console (tail) ---\n").Append(text.Length > 0 ? GuestImage.LastLines(text, 15) : "(none)").Append('\n');
    }

    /// <summary>What a crashed guest kernel prints first (a panic, a BUG, a lockup or stall report, list corruption, an oops).</summary>
    public static readonly IReadOnlyList<string> KernelCrashMarkers =
    [
        "Kernel panic", "BUG:", "soft lockup", "self-detected stall", "detected stalls", "list_add corruption", "list_del corruption",
        "general protection fault", "Oops:", "stack-protector", "__stack_chk_fail",
    ];

    /// <summary>The console line with the first kernel crash marker and the four after it, or null.</summary>
    private static string? FirstKernelCrash(string console)
    {
        string[] lines = console.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (KernelCrashMarkers.Any(m => lines[i].Contains(m, StringComparison.Ordinal)))
            {
                return string.Join('\n', lines.Skip(i).Take(5).Select(l => l.TrimEnd()));
            }
        }

        return null;
    }

    private void Note(string what)
    {
        _history.Append(_clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)).Append(" s: ").Append(what).Append('\n');
    }

    private static string FirstLine(string command)
    {
        int nl = command.IndexOf('\n', StringComparison.Ordinal);
        return nl < 0 ? command : command[..nl] + " ...";
    }
}
