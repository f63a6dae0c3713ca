using System.Diagnostics;
using System.Text;

namespace Vhost.HostileTests.Targets;

/// <summary>
/// A daemon started as a separate process: <c>process:COMMAND</c>, where COMMAND is split on
/// spaces and <c>{socket}</c> stands for the socket path (appended as <c>--socket-path PATH</c>
/// when absent). The device kind (what a well-formed request is) comes from the command name
/// (blk, rng, net) or <c>VHOST_HOSTILE_DEVICE</c> (echo, blk, rng, start).
/// </summary>
public sealed class ProcessTarget : IDaemonTarget
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    /// <summary>Starts the command and waits for its socket.</summary>
    /// <param name="command">The command line.</param>
    /// <param name="device">The device kind, or null to guess from the command.</param>
    /// <exception cref="InvalidOperationException">The process died or no socket appeared within 20 s.</exception>
    public ProcessTarget(string command, string? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        SocketPath = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}.sock");
        string line = command.Contains("{socket}", StringComparison.Ordinal)
            ? command.Replace("{socket}", SocketPath, StringComparison.Ordinal)
            : $"{command} --socket-path {SocketPath}";
        string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var info = new ProcessStartInfo(parts[0]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in parts.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        Name = $"process: {command}";
        Exercise = (device ?? Guess(command)) switch
        {
            "blk" => new BlkExercise(),
            "rng" => new RngExercise(),
            "echo" => new EchoExercise(),
            "input" => new InputExercise(),
            _ => new StartOnlyExercise(),
        };
        _process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {parts[0]}");
        _process.ErrorDataReceived += (_, e) =>
        {
            lock (_stderr)
            {
                _stderr.AppendLine(e.Data);
                if (_stderr.Length > 64 * 1024)
                {
                    _stderr.Remove(0, _stderr.Length - (32 * 1024));
                }
            }
        };
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        long deadline = Environment.TickCount64 + 20_000;
        while (!File.Exists(SocketPath))
        {
            if (_process.HasExited || Environment.TickCount64 > deadline)
            {
                string why = _process.HasExited ? $"exited with {_process.ExitCode}" : "made no socket in 20 s";
                Dispose();
                throw new InvalidOperationException($"{command} {why}: {Diagnostics()}");
            }

            Thread.Sleep(20);
        }
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public string SocketPath { get; }

    /// <inheritdoc/>
    public bool IsAlive => !_process.HasExited;

    /// <inheritdoc/>
    public IDeviceExercise Exercise { get; }

    /// <inheritdoc/>
    public int CountFds() => ProcFs.CountFds(_process.Id);

    /// <inheritdoc/>
    public int CountMappings() => ProcFs.CountMappings(_process.Id);

    /// <inheritdoc/>
    public long ResidentKiB() => ProcFs.ResidentKiB(_process.Id);

    /// <inheritdoc/>
    public bool WaitIdle(TimeSpan timeout)
    {
        // Not observable from outside; the next connection is served once the last one is released.
        Thread.Sleep(10);
        return true;
    }

    /// <inheritdoc/>
    public string Diagnostics()
    {
        lock (_stderr)
        {
            string s = _stderr.ToString();
            return s.Length > 2000 ? s[^2000..] : s;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process.Dispose();
        File.Delete(SocketPath);
    }

    private static string Guess(string command)
    {
        string? env = Environment.GetEnvironmentVariable("VHOST_HOSTILE_DEVICE");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        string all = command.ToLowerInvariant();
        return all.Contains("blk", StringComparison.Ordinal) ? "blk"
            : all.Contains("rng", StringComparison.Ordinal) ? "rng"
            : all.Contains("input", StringComparison.Ordinal) ? "input"
            : "start";
    }
}
