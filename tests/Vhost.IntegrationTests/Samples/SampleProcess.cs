using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// One of the project's sample daemons (<c>vhost-user-blk</c>, <c>vhost-user-rng</c>) run as a
/// separate process, <c>dotnet &lt;sample&gt;.dll</c> from the test's output folder, under
/// <c>timeout -s KILL</c> (so a crashed test run cannot leave it behind). <see cref="Start"/> returns
/// once the daemon printed its <c>socket:</c> line (it listens); <see cref="Kill"/> is a SIGKILL,
/// <see cref="Dispose"/> kills it too.
/// </summary>
internal sealed class SampleProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private SampleProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    /// <summary>The sample's assembly name (e.g. <c>vhost-user-blk</c>).</summary>
    public string Name { get; }

    /// <summary>The socket path it printed first (<c>socket: PATH</c>), or null before it did.</summary>
    public string? SocketPath => Output.Split('\n').FirstOrDefault(l => l.StartsWith("socket: ", StringComparison.Ordinal))?["socket: ".Length..].Trim();

    /// <summary>
    /// The daemon's own process (<c>dotnet</c>, the child of <c>timeout</c>), for a SIGKILL sent at
    /// exactly the moment a test chooses (<see cref="Kill"/> walks /proc first); null once it is gone.
    /// </summary>
    public int? DaemonProcessId => _process.HasExited ? null : Tree(_process.Id).Skip(1).Cast<int?>().FirstOrDefault();

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Everything it printed so far (stdout and stderr).</summary>
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

    /// <summary>
    /// Starts <c>dotnet NAME.dll ARGS</c> and waits until it printed <paramref name="ready"/> (by
    /// default its <c>socket:</c> line: it listens). <paramref name="launcher"/> runs before
    /// <c>dotnet</c> (e.g. <c>systemd-socket-activate -l PATH</c>, which execs it with the socket).
    /// </summary>
    /// <param name="name">The sample's assembly name.</param>
    /// <param name="args">Its arguments.</param>
    /// <param name="timeoutSeconds">When <c>timeout -s KILL</c> kills it.</param>
    /// <param name="ready">The output that says it is ready.</param>
    /// <param name="launcher">A command line that execs <c>dotnet</c>, or null.</param>
    /// <param name="redirectInput">Whether its stdin is a pipe the test writes to (<see cref="WriteInputLine"/>); otherwise it inherits the test's.</param>
    public static SampleProcess Start(string name, IEnumerable<string> args, int timeoutSeconds = 600, string ready = "socket: ", IEnumerable<string>? launcher = null, bool redirectInput = false)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the test project must reference the sample");
        var psi = new ProcessStartInfo("timeout")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-s");
        psi.ArgumentList.Add("KILL");
        psi.ArgumentList.Add(timeoutSeconds.ToString(CultureInfo.InvariantCulture));
        foreach (string a in launcher ?? [])
        {
            psi.ArgumentList.Add(a);
        }

        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = psi };
        var sample = new SampleProcess(process, name);
        process.OutputDataReceived += (_, e) => sample.Append(e.Data);
        process.ErrorDataReceived += (_, e) => sample.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            if (!sample.WaitForOutput(ready, TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException($"{name} did not print '{ready}' within 30 s:\n{sample.Output}");
            }
        }
        catch
        {
            sample.Dispose();
            throw;
        }

        return sample;
    }

    /// <summary>Writes a line to the sample's stdin (started with <c>redirectInput</c>).</summary>
    public void WriteInputLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits until the output contains <paramref name="text"/> (false when the process exits or the time passes first).</summary>
    public bool WaitForOutput(string text, TimeSpan timeout)
    {
        var w = Stopwatch.StartNew();
        while (w.Elapsed < timeout)
        {
            if (Output.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }

            if (_process.HasExited)
            {
                _process.WaitForExit();
                return Output.Contains(text, StringComparison.Ordinal);
            }

            Thread.Sleep(20);
        }

        return false;
    }

    /// <summary>
    /// SIGKILL (the whole tree: timeout and dotnet) and wait until every process of the tree is
    /// gone, not only the root: a test that takes the image next must not race the daemon's exit.
    /// </summary>
    public void Kill()
    {
        try
        {
            List<int> tree = _process.HasExited ? [] : Tree(_process.Id);
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit(10_000);
            long deadline = Environment.TickCount64 + 10_000;
            while (tree.Exists(p => Directory.Exists($"/proc/{p}")) && Environment.TickCount64 < deadline)
            {
                Thread.Sleep(10);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>A process and its descendants, from /proc.</summary>
    private static List<int> Tree(int root)
    {
        var parentOf = new Dictionary<int, int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out int pid))
            {
                try
                {
                    string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    parentOf[pid] = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                }
            }
        }

        var tree = new List<int> { root };
        for (int i = 0; i < tree.Count; i++)
        {
            foreach ((int pid, int parent) in parentOf)
            {
                if (parent == tree[i])
                {
                    tree.Add(pid);
                }
            }
        }

        return tree;
    }

    /// <summary>Kills the process if it still runs.</summary>
    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
