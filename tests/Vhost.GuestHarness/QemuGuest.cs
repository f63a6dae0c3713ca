using System.Diagnostics;
using System.Text;

namespace Vhost.GuestHarness;

/// <summary>
/// One running test guest: <c>qemu-system-x86_64 -accel tcg</c> booting the harness's kernel
/// and initramfs (<see cref="GuestImage"/>) with shared memfd RAM, the console and the test output
/// on two serial ports written to files, and a hard timeout. Dispose kills the whole process tree
/// (QEMU and, for host-root guests, virtiofsd) and removes the work directory.
/// </summary>
/// <example>
/// <code>
/// var options = new QemuGuestOptions { Script = ". /run/vhosttest/lib.sh; vt_check blk test -b /dev/vda" };
/// options.AddVhostUserDevice("vhost-user-blk-pci", socketPath, "num-queues=2");
/// GuestRunResult r = await QemuGuest.RunAsync(options, ct);
/// Assert.True(r.Succeeded, r.Describe());
/// </code>
/// </example>
public sealed class QemuGuest : IDisposable
{
    private readonly Process process;
    private readonly VirtiofsDaemon? virtiofs;
    private readonly QemuGuestOptions options;
    private readonly Stopwatch clock;
    private readonly StringBuilder errors = new();
    private readonly bool keepWorkDirectory;
    private GuestRunResult? result;
    private bool disposed;

    private QemuGuest(Process process, VirtiofsDaemon? virtiofs, QemuGuestOptions options, string workDirectory, IReadOnlyList<string> arguments)
    {
        this.process = process;
        this.virtiofs = virtiofs;
        this.options = options;
        WorkDirectory = workDirectory;
        Arguments = arguments;
        clock = Stopwatch.StartNew();
        keepWorkDirectory = System.Environment.GetEnvironmentVariable("VHOST_GUEST_KEEP") == "1";
    }

    /// <summary>The run's scratch directory (logs, script, virtiofs socket); removed on dispose unless <c>VHOST_GUEST_KEEP=1</c>.</summary>
    public string WorkDirectory { get; }

    /// <summary>The guest console log (first serial port).</summary>
    public string ConsoleLogPath => Path.Combine(WorkDirectory, QemuGuestOptions.ConsoleLogName);

    /// <summary>The test output log (second serial port).</summary>
    public string OutputLogPath => Path.Combine(WorkDirectory, QemuGuestOptions.OutputLogName);

    /// <summary>The QMP socket (with <see cref="QemuGuestOptions.Qmp"/> or <see cref="QemuGuestOptions.Agent"/>).</summary>
    public string QmpSocketPath => Path.Combine(WorkDirectory, QemuGuestOptions.QmpSocketName);

    /// <summary>The guest agent's command socket (with <see cref="QemuGuestOptions.Agent"/>).</summary>
    public string AgentSocketPath => Path.Combine(WorkDirectory, QemuGuestOptions.AgentSocketName);

    /// <summary>The QEMU this guest runs on.</summary>
    public QemuBinary Qemu => options.Qemu ?? QemuBinary.Installed;

    /// <summary>Whether QEMU has exited.</summary>
    public bool HasExited => process.HasExited;

    /// <summary>What QEMU printed on stderr and stdout so far.</summary>
    public string QemuErrors
    {
        get
        {
            lock (errors)
            {
                return errors.ToString();
            }
        }
    }

    /// <summary>QEMU's arguments (without the binary).</summary>
    public IReadOnlyList<string> Arguments { get; }

    /// <summary>QEMU's process id.</summary>
    public int ProcessId => process.Id;

    /// <summary>
    /// The dotnet host to run a .NET program with inside a host-root guest (the same binary the
    /// host uses: <c>DOTNET_HOST_PATH</c>, this process when it is dotnet, else <c>dotnet</c> from PATH).
    /// </summary>
    public static string DotnetHostPath
    {
        get
        {
            if (System.Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
            {
                return host;
            }

            if (System.Environment.ProcessPath is { } self && Path.GetFileName(self) == "dotnet")
            {
                return self;
            }

            return GuestImage.FindOnPath("dotnet") ?? "dotnet";
        }
    }

    /// <summary>Boots a guest; it runs until its script ends (or the timeout). Await <see cref="WaitForExitAsync"/> for the result.</summary>
    /// <param name="image">The kernel and initramfs.</param>
    /// <param name="options">What to run and which devices to add.</param>
    /// <param name="cancellationToken">Cancels the start (virtiofsd start-up).</param>
    /// <returns>The running guest.</returns>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="GuestUnavailableException">A host-root guest cannot be had (no virtiofsd, not root).</exception>
    public static async Task<QemuGuest> StartAsync(GuestImage image, QemuGuestOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        // Short path under /tmp: Unix socket paths are limited to 107 bytes.
        string work = Directory.CreateTempSubdirectory("vhost-guest-").FullName;
        VirtiofsDaemon? virtiofs = null;
        try
        {
            string? scriptFile = null;
            if (options.ComposeScript() is { } script)
            {
                scriptFile = Path.Combine(work, "script.sh");
                await File.WriteAllTextAsync(scriptFile, script, cancellationToken).ConfigureAwait(false);
            }

            if (options.HostRoot)
            {
                virtiofs = await VirtiofsDaemon.StartAsync(Path.Combine(work, "hostroot.sock"), cancellationToken).ConfigureAwait(false);
            }

            List<string> args = options.BuildArguments(image, work, scriptFile, virtiofs?.SocketPath);
            QemuBinary qemu = options.Qemu ?? QemuBinary.Installed;
            var psi = new ProcessStartInfo(qemu.Path)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            foreach ((string name, string value) in qemu.Environment)
            {
                psi.Environment[name] = value;
            }

            var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {qemu.Path}");
            var guest = new QemuGuest(process, virtiofs, options, work, args);
            process.StandardInput.Close();
            process.ErrorDataReceived += guest.OnQemuOutput;
            process.OutputDataReceived += guest.OnQemuOutput;
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            return guest;
        }
        catch
        {
            virtiofs?.Dispose();
            TryDeleteDirectory(work);
            throw;
        }
    }

    /// <summary>
    /// Boots a guest with <paramref name="options"/>, waits for it to power off (or the timeout),
    /// and cleans up. Skips the calling xunit test when the guest cannot be had.
    /// </summary>
    /// <param name="options">What to run and which devices to add.</param>
    /// <param name="cancellationToken">Kills the guest early.</param>
    /// <returns>The result.</returns>
    public static async Task<GuestRunResult> RunAsync(QemuGuestOptions options, CancellationToken cancellationToken = default)
    {
        GuestImage image = await GuestImage.GetOrSkipAsync(cancellationToken).ConfigureAwait(false);
        QemuGuest guest;
        try
        {
            guest = await StartAsync(image, options, cancellationToken).ConfigureAwait(false);
        }
        catch (GuestUnavailableException e)
        {
            Assert.Skip("test guest unavailable: " + e.Message);
            throw;
        }

        using (guest)
        {
            return await guest.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs a host shell command inside a guest whose root is the host's <c>/</c> (virtiofs,
    /// read-only, under a tmpfs overlay), in the current directory unless
    /// <see cref="QemuGuestOptions.WorkingDirectory"/> says otherwise. The guest kernel's vhost,
    /// vsock, tun, vDPA and VDUSE modules are loaded first, so <c>/dev/vhost-net</c>,
    /// <c>/dev/vhost-vsock</c> and <c>/dev/vduse/control</c> exist. Skips the calling xunit test
    /// when the guest cannot be had.
    /// </summary>
    /// <param name="command">A <c>/bin/sh</c> command line, e.g. <c>dotnet path/Tests.dll -class X</c>.</param>
    /// <param name="options">
    /// Devices, memory, timeout, environment (<see cref="QemuGuestOptions.Script"/> and
    /// <see cref="QemuGuestOptions.HostRoot"/> are set here); default 1 GiB, 180 s.
    /// </param>
    /// <param name="cancellationToken">Kills the guest early.</param>
    /// <returns>The result: <see cref="GuestRunResult.ExitCode"/> is the command's exit status, <see cref="GuestRunResult.OutputLines"/> its output.</returns>
    public static Task<GuestRunResult> RunInGuestAsync(string command, QemuGuestOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        options ??= new QemuGuestOptions { MemoryMiB = 1024, Timeout = TimeSpan.FromSeconds(180) };
        options.Script = command;
        options.HostRoot = true;
        options.WorkingDirectory ??= System.Environment.CurrentDirectory;
        // .NET in the guest: no first-run work, no telemetry, no diagnostics IPC socket.
        options.Environment.TryAdd("DOTNET_CLI_TELEMETRY_OPTOUT", "1");
        options.Environment.TryAdd("DOTNET_NOLOGO", "1");
        options.Environment.TryAdd("DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1");
        return RunAsync(options, cancellationToken);
    }

    /// <summary>Waits for the guest to power off, killing it when the options' timeout passes.</summary>
    /// <param name="cancellationToken">Kills the guest early (then throws <see cref="OperationCanceledException"/>).</param>
    /// <returns>The result (also when the guest timed out: see <see cref="GuestRunResult.TimedOut"/>).</returns>
    public async Task<GuestRunResult> WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (result is not null)
        {
            return result;
        }

        bool timedOut = false;
        TimeSpan remaining = options.Timeout - clock.Elapsed;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Kill();
                cancellationToken.ThrowIfCancellationRequested();
                timedOut = true;
            }
        }

        // Also waits for the redirected output to drain.
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        TimeSpan elapsed = clock.Elapsed;
        int qemuExit = process.ExitCode;
        virtiofs?.Dispose();

        string outputText = File.Exists(OutputLogPath) ? await File.ReadAllTextAsync(OutputLogPath, CancellationToken.None).ConfigureAwait(false) : string.Empty;
        string console = File.Exists(ConsoleLogPath) ? await File.ReadAllTextAsync(ConsoleLogPath, CancellationToken.None).ConfigureAwait(false) : string.Empty;
        string qemuErrors;
        lock (errors)
        {
            qemuErrors = errors.ToString();
        }

        result = new GuestRunResult(
            GuestOutput.Parse(outputText),
            timedOut ? -1 : qemuExit,
            timedOut,
            elapsed,
            console.Replace("\r", string.Empty, StringComparison.Ordinal),
            qemuErrors,
            virtiofs?.Errors,
            Arguments);
        return result;
    }

    /// <summary>Kills QEMU (and virtiofsd) if still running and removes the work directory.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        Kill();
        virtiofs?.Dispose();
        process.Dispose();
        if (!keepWorkDirectory)
        {
            TryDeleteDirectory(WorkDirectory);
        }
    }

    private void Kill()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
    }

    private void OnQemuOutput(object sender, DataReceivedEventArgs e)
    {
        if (e.Data is null)
        {
            return;
        }

        lock (errors)
        {
            if (errors.Length < 64 * 1024)
            {
                errors.Append(e.Data).Append('\n');
            }
        }
    }

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
