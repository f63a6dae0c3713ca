using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Vhost.IntegrationTests.UserNet;

/// <summary>
/// The vhost-user-net sample run as a separate process (<c>dotnet vhost-user-net.dll</c>, under
/// <c>timeout -s KILL</c> so a crashed test run cannot leave it behind), one socket per port in a
/// private temp folder. <see cref="StopAsync"/> sends SIGTERM and collects the exit code and the
/// final counters; <see cref="Dispose"/> kills it if still running and removes the folder.
/// </summary>
internal sealed class NetSample : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly DirectoryInfo _directory;

    private NetSample(Process process, DirectoryInfo directory, string[] sockets)
    {
        _process = process;
        _directory = directory;
        SocketPaths = sockets;
    }

    /// <summary>The ports' socket paths.</summary>
    public IReadOnlyList<string> SocketPaths { get; }

    /// <summary>Everything the sample printed so far.</summary>
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

    /// <summary>The sample's assembly, built beside the tests.</summary>
    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "vhost-user-net.dll");

    /// <summary>Starts the sample with <paramref name="ports"/> sockets and <paramref name="arguments"/>, and waits for every socket.</summary>
    public static NetSample Start(int ports, params string[] arguments)
    {
        DirectoryInfo dir = Directory.CreateTempSubdirectory("vhost-net-");
        string[] sockets = [.. Enumerable.Range(0, ports).Select(i => Path.Combine(dir.FullName, $"port{i}.sock"))];
        var psi = new ProcessStartInfo("timeout")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])["-s", "KILL", "600", "dotnet", AssemblyPath, .. sockets.SelectMany(s => new[] { "--socket-path", s }), .. arguments])
        {
            psi.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = psi };
        var sample = new NetSample(process, dir, sockets);
        process.OutputDataReceived += (_, e) => sample.Append(e.Data);
        process.ErrorDataReceived += (_, e) => sample.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var watch = Stopwatch.StartNew();
            while (!sockets.All(File.Exists))
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"vhost-user-net exited with {process.ExitCode} before listening:\n{sample.Output}");
                }

                if (watch.Elapsed > TimeSpan.FromSeconds(30))
                {
                    throw new TimeoutException($"vhost-user-net did not listen within 30 s:\n{sample.Output}");
                }

                Thread.Sleep(20);
            }
        }
        catch
        {
            sample.Dispose();
            throw;
        }

        return sample;
    }

    /// <summary>Sends SIGTERM (timeout forwards it) and waits for the exit.</summary>
    /// <returns>The exit code.</returns>
    public async Task<int> StopAsync()
    {
        using (Process kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>The counter line the sample logs for <paramref name="port"/> when it stops.</summary>
    /// <returns>The TX and RX frame counts.</returns>
    public (long Tx, long Rx, long Dropped) Counters(int port)
    {
        string? line = Output.Split('\n').LastOrDefault(l => l.Contains($"port {port}: tx ", StringComparison.Ordinal));
        Assert.True(line is not null, "no counter line for port " + port + ":\n" + Output);
        var m = System.Text.RegularExpressions.Regex.Match(line!, @"tx (\d+) frames/\d+ B \(\d+ errors\), rx (\d+) frames/\d+ B \((\d+) dropped\)");
        Assert.True(m.Success, line);
        return (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
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
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
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
