using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Vhost.GuestHarness;

/// <summary>
/// The test guest's boot pieces: the Debian trixie cloud kernel (6.12, with vhost-net,
/// vhost-vsock, vDPA and VDUSE modules) and the harness's busybox initramfs, both built by
/// <c>tools/guest/mkinitramfs.sh</c> (which calls <c>fetch-kernel.sh</c>) into the cache
/// directory, <c>VHOST_GUEST_CACHE</c> or <c>&lt;repo&gt;/.build/guest</c>.
/// </summary>
/// <remarks>
/// The scripts run at most once per process (the first <see cref="GetAsync"/> call); later calls
/// return the same image, or rethrow the same failure. The scripts themselves are idempotent and
/// fast when the cache is warm (milliseconds), and take a file lock, so several test processes may
/// call them at once. Environment: <c>VHOST_GUEST_TESTS=0</c> makes the guest unavailable on
/// purpose; <c>VHOST_QEMU</c> names the QEMU binary; <c>VHOST_REPO_ROOT</c> overrides the
/// repository root that holds <c>tools/guest</c>.
/// </remarks>
public sealed class GuestImage
{
    /// <summary>Exit status the guest scripts use when a dependency cannot be had (EX_UNAVAILABLE).</summary>
    private const int ScriptUnavailableExitCode = 69;

    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(15);
    private static readonly Lazy<Task<GuestImage>> Shared = new(LoadAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Creates an image description from known paths (tests of the argument builder).</summary>
    internal GuestImage(string repositoryRoot, string cacheDirectory, string kernelVersion, string kernelPath, string initrdPath, string qemuPath)
    {
        RepositoryRoot = repositoryRoot;
        CacheDirectory = cacheDirectory;
        KernelVersion = kernelVersion;
        KernelPath = kernelPath;
        InitrdPath = initrdPath;
        QemuPath = qemuPath;
    }

    /// <summary>The repository root (the directory holding <c>tools/guest</c>).</summary>
    public string RepositoryRoot { get; }

    /// <summary>The cache directory the kernel and initramfs live in.</summary>
    public string CacheDirectory { get; }

    /// <summary>The guest kernel's release, e.g. <c>6.12.117+deb13-cloud-amd64</c>.</summary>
    public string KernelVersion { get; }

    /// <summary>The kernel image (<c>-kernel</c>).</summary>
    public string KernelPath { get; }

    /// <summary>The initramfs (<c>-initrd</c>).</summary>
    public string InitrdPath { get; }

    /// <summary>The <c>qemu-system-x86_64</c> binary.</summary>
    public string QemuPath { get; }

    /// <summary>Gets the image, building or downloading it on first use.</summary>
    /// <param name="cancellationToken">Stops waiting (the shared build goes on for other callers).</param>
    /// <returns>The image.</returns>
    /// <exception cref="GuestUnavailableException">QEMU or the kernel cannot be had here; the message says exactly why.</exception>
    /// <exception cref="InvalidOperationException">A guest script failed for a reason other than a missing dependency (a bug to fix, not to skip).</exception>
    public static Task<GuestImage> GetAsync(CancellationToken cancellationToken = default) =>
        Shared.Value.WaitAsync(cancellationToken);

    /// <summary>
    /// Gets the image, or skips the calling xunit test (<c>Assert.Skip</c>) with the exact reason
    /// when the guest cannot be had. Failures that are bugs still fail the test.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The image.</returns>
    public static async Task<GuestImage> GetOrSkipAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await GetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (GuestUnavailableException e)
        {
            Assert.Skip("test guest unavailable: " + e.Message);
            throw; // not reached: Assert.Skip throws
        }
    }

    /// <summary>Finds the repository root: <c>VHOST_REPO_ROOT</c>, the root recorded at build time, or a parent of the test binaries.</summary>
    /// <returns>The directory that holds <c>tools/guest/mkinitramfs.sh</c>, or <see langword="null"/>.</returns>
    public static string? FindRepositoryRoot()
    {
        var candidates = new List<string?>
        {
            Environment.GetEnvironmentVariable("VHOST_REPO_ROOT"),
            typeof(GuestImage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "VhostRepoRoot")?.Value,
        };
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            candidates.Add(d.FullName);
        }

        return candidates
            .Where(c => !string.IsNullOrEmpty(c))
            .Select(c => Path.GetFullPath(c!))
            .FirstOrDefault(c => File.Exists(Path.Combine(c, "tools", "guest", "mkinitramfs.sh")));
    }

    /// <summary>Finds an executable on <c>PATH</c>.</summary>
    /// <param name="name">The file name.</param>
    /// <returns>The full path, or <see langword="null"/>.</returns>
    internal static string? FindOnPath(string name)
    {
        string path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
    }

    private static async Task<GuestImage> LoadAsync()
    {
        if (Environment.GetEnvironmentVariable("VHOST_GUEST_TESTS") == "0")
        {
            throw new GuestUnavailableException("disabled by VHOST_GUEST_TESTS=0");
        }

        if (Environment.GetEnvironmentVariable("VHOST_TEST_IN_GUEST") == "1")
        {
            throw new GuestUnavailableException("this process already runs inside the test guest (VHOST_TEST_IN_GUEST=1); guests do not nest");
        }

        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            throw new GuestUnavailableException("the test guest needs an x86-64 Linux host");
        }

        string qemu = QemuBinary.Installed.Path;
        if (!File.Exists(qemu))
        {
            throw new GuestUnavailableException("qemu-system-x86_64 not found on PATH (tools/install-test-deps.sh installs it with apt)");
        }

        string root = FindRepositoryRoot()
            ?? throw new GuestUnavailableException($"tools/guest/mkinitramfs.sh not found above {AppContext.BaseDirectory} (set VHOST_REPO_ROOT)");
        string script = Path.Combine(root, "tools", "guest", "mkinitramfs.sh");

        var psi = new ProcessStartInfo("/bin/bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        using var process = Process.Start(psi) ?? throw new GuestUnavailableException($"cannot start /bin/bash {script}");
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(ScriptTimeout))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new GuestUnavailableException($"{script} did not finish within {ScriptTimeout.TotalMinutes} minutes");
            }
        }

        string output = await stdout.ConfigureAwait(false);
        string errors = await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            string message = $"{script} exited with {process.ExitCode}: {LastLines(errors, 8)}";
            throw process.ExitCode == ScriptUnavailableExitCode
                ? new GuestUnavailableException(message)
                : new InvalidOperationException(message);
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                values[line.Substring(0, eq)] = line.Substring(eq + 1);
            }
        }

        string Get(string key) => values.TryGetValue(key, out string? v) && v.Length > 0
            ? v
            : throw new InvalidOperationException($"{script} printed no '{key}=' line; output: {output}");

        string kernel = Get("kernel");
        string initrd = Get("initrd");
        if (!File.Exists(kernel) || !File.Exists(initrd))
        {
            throw new InvalidOperationException($"{script} reported {kernel} and {initrd}, which do not both exist");
        }

        string cache = Path.GetDirectoryName(initrd)!;
        return new GuestImage(root, cache, Get("kver"), kernel, initrd, qemu);
    }

    internal static string LastLines(string text, int count)
    {
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sb = new StringBuilder();
        foreach (string line in lines.Skip(Math.Max(0, lines.Length - count)))
        {
            sb.Append(sb.Length == 0 ? string.Empty : " | ").Append(line);
        }

        return sb.Length == 0 ? "(no output)" : sb.ToString();
    }
}
