using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Vhost.GuestHarness;

/// <summary>
/// A QEMU to run the test guest with: the installed one (Debian 12's QEMU 7.2, or
/// <c>VHOST_QEMU</c>) or the newer one from bookworm-backports (QEMU 10.x), which
/// <c>tools/guest/fetch-qemu.sh</c> unpacks into the cache without installing it.
/// </summary>
public sealed partial class QemuBinary
{
    private const int ScriptUnavailableExitCode = 69;
    private static readonly Lazy<QemuBinary> s_installed = new(FindInstalled);
    private static readonly Lazy<Task<QemuBinary>> s_newer = new(LoadNewerAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Describes a QEMU binary.</summary>
    /// <param name="path">The <c>qemu-system-x86_64</c> executable.</param>
    /// <param name="version">Its version.</param>
    /// <param name="dataDirectories">Firmware directories passed with <c>-L</c>, in order (none for the installed QEMU).</param>
    /// <param name="environment">Environment variables it needs (e.g. <c>QEMU_MODULE_DIR</c>).</param>
    public QemuBinary(string path, Version version, IReadOnlyList<string> dataDirectories, IReadOnlyDictionary<string, string> environment)
    {
        Path = path;
        Version = version;
        DataDirectories = dataDirectories;
        Environment = environment;
    }

    /// <summary>The executable.</summary>
    public string Path { get; }

    /// <summary>QEMU's version (from <c>--version</c>).</summary>
    public Version Version { get; }

    /// <summary>Firmware directories (<c>-L</c>), in order.</summary>
    public IReadOnlyList<string> DataDirectories { get; }

    /// <summary>Environment variables QEMU runs with.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>The installed QEMU (<c>VHOST_QEMU</c>, else <c>qemu-system-x86_64</c> on PATH); its path is empty when there is none.</summary>
    public static QemuBinary Installed => s_installed.Value;

    /// <summary>
    /// The QEMU of a lifecycle test, by name: <c>"7.2"</c> is <see cref="Installed"/>, <c>"10"</c> the
    /// bookworm-backports QEMU 10.x. Skips the calling test when it cannot be had.
    /// </summary>
    /// <param name="name">"7.2" or "10".</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The binary.</returns>
    public static async Task<QemuBinary> GetOrSkipAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        QemuBinary binary;
        try
        {
            binary = name switch
            {
                "7.2" => Installed.Path.Length > 0 ? Installed : throw new GuestUnavailableException("qemu-system-x86_64 not found on PATH (tools/install-test-deps.sh installs it with apt)"),
                "10" => await s_newer.Value.WaitAsync(cancellationToken).ConfigureAwait(false),
                _ => throw new ArgumentException($"unknown QEMU '{name}' (7.2 or 10)", nameof(name)),
            };
        }
        catch (GuestUnavailableException e)
        {
            Assert.Skip($"QEMU {name} unavailable: {e.Message}");
            throw;
        }

        if (!binary.Version.ToString().StartsWith(name, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"asked for QEMU {name}, found {binary.Version} at {binary.Path}");
        }

        return binary;
    }

    /// <inheritdoc/>
    public override string ToString() => $"QEMU {Version} ({Path})";

    private static QemuBinary FindInstalled()
    {
        string path = System.Environment.GetEnvironmentVariable("VHOST_QEMU") is { Length: > 0 } q ? q : GuestImage.FindOnPath("qemu-system-x86_64") ?? string.Empty;
        Version version = path.Length > 0 && File.Exists(path) ? ReadVersion(path, new Dictionary<string, string>()) : new Version(0, 0);
        return new QemuBinary(File.Exists(path) ? path : string.Empty, version, [], new Dictionary<string, string>());
    }

    private static async Task<QemuBinary> LoadNewerAsync()
    {
        string root = GuestImage.FindRepositoryRoot() ?? throw new GuestUnavailableException("tools/guest not found (set VHOST_REPO_ROOT)");
        string script = System.IO.Path.Combine(root, "tools", "guest", "fetch-qemu.sh");
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        using Process process = Process.Start(psi) ?? throw new GuestUnavailableException($"cannot start {script}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15)))
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }

        string output = await stdout.ConfigureAwait(false);
        string errors = await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            string message = $"{script} exited with {process.ExitCode}: {GuestImage.LastLines(errors, 8)}";
            throw process.ExitCode == ScriptUnavailableExitCode ? new GuestUnavailableException(message) : new InvalidOperationException(message);
        }

        string? path = null;
        var data = new List<string>();
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            string key = line[..eq];
            string value = line[(eq + 1)..];
            switch (key)
            {
                case "qemu":
                    path = value;
                    break;
                case "datadir":
                    data.Add(value);
                    break;
                case "moduledir":
                    environment["QEMU_MODULE_DIR"] = value;
                    break;
                case "libdir":
                    // Libraries only some display modules need (a missing one is a warning, not an error).
                    environment["LD_LIBRARY_PATH"] = value;
                    break;
            }
        }

        if (path is null || !File.Exists(path))
        {
            throw new InvalidOperationException($"{script} printed no usable 'qemu=' line: {output}");
        }

        return new QemuBinary(path, ReadVersion(path, environment), data, environment);
    }

    private static Version ReadVersion(string path, IReadOnlyDictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--version");
        foreach ((string k, string v) in environment)
        {
            psi.Environment[k] = v;
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot run {path} --version");
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Match m = VersionPattern().Match(text);
        return m.Success ? new Version(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture))
            : throw new InvalidOperationException($"{path} --version printed no version: {text}");
    }

    [GeneratedRegex(@"version (\d+)\.(\d+)\.(\d+)")]
    private static partial Regex VersionPattern();
}
