using System.Diagnostics;
using System.Text;

namespace Vhost.GuestHarness;

/// <summary>
/// The C virtiofsd of QEMU 7.2 (<c>/usr/lib/qemu/virtiofsd</c>) exporting the host's <c>/</c>
/// for a host-root guest. It exits on its own when QEMU disconnects; <see cref="Dispose"/> kills
/// it if it has not.
/// </summary>
internal sealed class VirtiofsDaemon : IDisposable
{
    internal const string DefaultPath = "/usr/lib/qemu/virtiofsd";

    private static readonly TimeSpan SocketWait = TimeSpan.FromSeconds(10);

    private readonly Process process;
    private readonly StringBuilder errors = new();

    private VirtiofsDaemon(Process process, string socketPath)
    {
        this.process = process;
        SocketPath = socketPath;
    }

    public string SocketPath { get; }

    public string Errors
    {
        get
        {
            lock (errors)
            {
                return errors.ToString();
            }
        }
    }

    /// <summary>Starts virtiofsd and waits until its socket exists.</summary>
    /// <exception cref="GuestUnavailableException">virtiofsd is missing or we are not root.</exception>
    /// <exception cref="InvalidOperationException">virtiofsd exited or did not create its socket.</exception>
    public static async Task<VirtiofsDaemon> StartAsync(string socketPath, CancellationToken cancellationToken)
    {
        string binary = Environment.GetEnvironmentVariable("VHOST_VIRTIOFSD") is { Length: > 0 } v ? v : DefaultPath;
        if (!File.Exists(binary))
        {
            throw new GuestUnavailableException($"{binary} not found (package qemu-system-common; tools/install-test-deps.sh installs it)");
        }

        if (!IsRoot())
        {
            throw new GuestUnavailableException("a host-root guest needs root: virtiofsd exports / with a chroot sandbox");
        }

        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--socket-path=" + socketPath);
        psi.ArgumentList.Add("-o");
        psi.ArgumentList.Add("source=/");
        psi.ArgumentList.Add("-o");
        psi.ArgumentList.Add("cache=always");
        psi.ArgumentList.Add("-o");
        psi.ArgumentList.Add("sandbox=chroot");
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {binary}");
        var daemon = new VirtiofsDaemon(process, socketPath);
        process.StandardInput.Close();
        process.ErrorDataReceived += daemon.OnError;
        process.OutputDataReceived += daemon.OnError;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            var watch = Stopwatch.StartNew();
            while (!File.Exists(socketPath))
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{binary} exited with {process.ExitCode} before creating {socketPath}: {daemon.Errors}");
                }

                if (watch.Elapsed > SocketWait)
                {
                    throw new InvalidOperationException($"{binary} did not create {socketPath} within {SocketWait.TotalSeconds} s: {daemon.Errors}");
                }

                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }

            return daemon;
        }
        catch
        {
            daemon.Dispose();
            throw;
        }
    }

    public void Dispose()
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
            // Already gone.
        }

        process.Dispose();
    }

    private static bool IsRoot()
    {
        // /proc/self/status "Uid:" real effective saved fs.
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                string[] f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return f.Length > 2 && f[2] == "0";
            }
        }

        return false;
    }

    private void OnError(object sender, DataReceivedEventArgs e)
    {
        if (e.Data is null)
        {
            return;
        }

        lock (errors)
        {
            // Keep the log bounded: virtiofsd can be chatty on a long run.
            if (errors.Length < 64 * 1024)
            {
                errors.Append(e.Data).Append('\n');
            }
        }
    }
}
