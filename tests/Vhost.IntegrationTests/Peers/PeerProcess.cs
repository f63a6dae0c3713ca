using System.Diagnostics;
using System.Text;

namespace Vhost.IntegrationTests.Peers;

/// <summary>
/// A third-party vhost-user back-end started by a test: run under <c>timeout</c> (so a crashed
/// test run cannot leave it behind), on a socket in a private temp folder, with its output
/// collected; <see cref="Dispose"/> kills it and removes the folder. Stdin is a pipe kept open
/// for the process's life (dpdk-testpmd exits when its stdin hits EOF).
/// </summary>
internal sealed class PeerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private PeerProcess(Process process, string name, DirectoryInfo dir, string socketPath)
    {
        _process = process;
        Name = name;
        Directory = dir;
        SocketPath = socketPath;
    }

    public string Name { get; }

    public DirectoryInfo Directory { get; }

    public string SocketPath { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Runs after the process is gone (removes files the peer leaves outside its folder).</summary>
    public Action? Cleanup { get; set; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Creates the temp folder in which a peer's socket and files live.</summary>
    public static DirectoryInfo CreateDirectory(string name) => System.IO.Directory.CreateTempSubdirectory($"vhost-peer-{name}-");

    /// <summary>Starts <paramref name="program"/> under <c>timeout -s KILL <paramref name="timeoutSeconds"/></c> and waits until <paramref name="socketPath"/> exists.</summary>
    public static PeerProcess Start(string name, DirectoryInfo dir, string socketPath, int timeoutSeconds, string program, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("timeout")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = dir.FullName,
        };
        psi.ArgumentList.Add("-s");
        psi.ArgumentList.Add("KILL");
        psi.ArgumentList.Add(timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.ArgumentList.Add(program);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (environment is not null)
        {
            foreach (KeyValuePair<string, string> kv in environment)
            {
                psi.Environment[kv.Key] = kv.Value;
            }
        }

        var process = new Process { StartInfo = psi };
        var peer = new PeerProcess(process, name, dir, socketPath);
        process.OutputDataReceived += (_, e) => peer.Append(e.Data);
        process.ErrorDataReceived += (_, e) => peer.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            peer.WaitForSocket(TimeSpan.FromSeconds(15));
        }
        catch
        {
            peer.Dispose();
            throw;
        }

        return peer;
    }

    /// <summary>Waits until the peer prints <paramref name="text"/>.</summary>
    public bool WaitForOutput(string text, TimeSpan timeout)
    {
        var w = Stopwatch.StartNew();
        while (w.Elapsed < timeout)
        {
            if (Output.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }

            Thread.Sleep(20);
        }

        return false;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        try
        {
            Cleanup?.Invoke();
        }
        catch (IOException)
        {
        }

        try
        {
            Directory.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private void WaitForSocket(TimeSpan timeout)
    {
        var w = Stopwatch.StartNew();
        while (!File.Exists(SocketPath))
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before creating {SocketPath}:\n{Output}");
            }

            if (w.Elapsed > timeout)
            {
                throw new TimeoutException($"{Name} did not create {SocketPath} within {timeout.TotalSeconds} s:\n{Output}");
            }

            Thread.Sleep(10);
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 1 << 20)
            {
                _output.AppendLine(line);
            }
        }
    }
}
