using System.Diagnostics;
using Vhost.HostileTests.Frontend;
using Vhost.HostileTests.Targets;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.HostileTests.Backend;

/// <summary>
/// The built <c>vhost-probe</c> (samples/VhostProbe, run as a process) against every
/// <see cref="MaliciousBackend"/> misbehaviour on every request the probe sends: each run must end
/// within its timeout (no hang), without an unhandled-exception stack dump or a signal (no crash),
/// and with a non-zero exit and one clear <c>vhost-probe: ...</c> error line, unless the
/// misbehaviour left the conversation well-formed (an absurd but legal value, unsolicited
/// messages the probe never reads, fds it drops).
/// </summary>
public sealed class ProbeVsMaliciousBackendTests(ITestOutputHelper output)
{
    /// <summary>The probe's --reply-timeout in seconds.</summary>
    private const double ReplyTimeoutSeconds = 0.5;

    /// <summary>A run that takes longer is a hang (start-up, 7 requests, each at most one reply timeout).</summary>
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(30);

    /// <summary>What the probe sends, in order (REPLY_ACK is negotiated, so every one has a reply).</summary>
    private static readonly FrontendRequest[] ProbeRequests =
    [
        FrontendRequest.GetFeatures, FrontendRequest.GetProtocolFeatures, FrontendRequest.SetProtocolFeatures,
        FrontendRequest.GetQueueNum, FrontendRequest.GetMaxMemSlots, FrontendRequest.SetOwner, FrontendRequest.GetConfig,
    ];

    /// <summary>Misbehaviours after which the conversation can still be well-formed, so the probe may succeed.</summary>
    private static readonly HashSet<string> Benign =
        ["absurd u64 value", "flood of 1 000 unsolicited messages", "stray fds on the reply", "no reply flag", "version 3 and reserved flags"];

    [Fact]
    public void Every_misbehaviour_ends_the_probe_with_a_clear_error_in_time()
    {
        string probe = DaemonTargets.SampleAssembly("vhost-user-blk")
            .Replace("VhostUserBlk", "VhostProbe", StringComparison.Ordinal).Replace("vhost-user-blk.dll", "vhost-probe.dll", StringComparison.Ordinal);
        if (!File.Exists(probe))
        {
            Assert.Skip($"vhost-probe is not built at {probe}");
        }

        var runs = new List<(FrontendRequest Request, string Name, Action<VhostUserMessage, VhostUserConnection> Act)>();
        foreach (FrontendRequest request in ProbeRequests)
        {
            foreach ((string name, Action<VhostUserMessage, VhostUserConnection> act) in MaliciousBackendTests.Misbehaviours)
            {
                runs.Add((request, name, act));
            }
        }

        var failures = new List<string>();
        int clear = 0;
        int benignAccepted = 0;
        long slowestMs = 0;
        var gate = new Lock();
        Parallel.ForEach(runs, new ParallelOptions { MaxDegreeOfParallelism = 4 }, run =>
        {
            ProbeRun r = RunProbe(probe, run.Request, run.Act);
            string what = $"{run.Request} / {run.Name}";
            lock (gate)
            {
                slowestMs = Math.Max(slowestMs, r.Milliseconds);
                if (r.Hung)
                {
                    failures.Add($"{what}: hung ({r.Milliseconds} ms, killed)");
                }
                else if (r.Stderr.Contains("Unhandled exception", StringComparison.Ordinal) || r.ExitCode is not (0 or 1))
                {
                    failures.Add($"{what}: crashed (exit {r.ExitCode}): {r.Stderr}");
                }
                else if (r.ExitCode == 0)
                {
                    // SET_PROTOCOL_FEATURES goes without NEED_REPLY (REPLY_ACK is not active before it):
                    // not answering it is correct.
                    if (Benign.Contains(run.Name) || (run.Request == FrontendRequest.SetProtocolFeatures && run.Name == "no reply at all"))
                    {
                        benignAccepted++;
                    }
                    else
                    {
                        failures.Add($"{what}: exit 0 (accepted); stdout: {r.Stdout.ReplaceLineEndings(" | ")}");
                    }
                }
                else
                {
                    string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (lines.Length == 1 && lines[0].StartsWith("vhost-probe: ", StringComparison.Ordinal))
                    {
                        clear++;
                    }
                    else
                    {
                        failures.Add($"{what}: exit 1 without one clear error line: {r.Stderr}");
                    }
                }
            }
        });

        string line = $"vhost-probe vs malicious back-end: tried {runs.Count}, clear errors {clear}, accepted (benign) {benignAccepted}, failures {failures.Count}, slowest run {slowestMs} ms";
        output.WriteLine(line);
        SummaryFile.Append(line + (failures.Count > 0 ? "\n  " + string.Join("\n  ", failures) : string.Empty));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static ProbeRun RunProbe(string probe, FrontendRequest request, Action<VhostUserMessage, VhostUserConnection> act)
    {
        using var evil = new MaliciousBackend(request, act);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { probe, "--socket-path", evil.SocketPath, "--reply-timeout", ReplyTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(a);
        }

        var clock = Stopwatch.StartNew();
        using Process p = Process.Start(start)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        bool exited = p.WaitForExit(RunLimit);
        if (!exited)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }

        long ms = clock.ElapsedMilliseconds;
        return new ProbeRun(!exited, exited ? p.ExitCode : -1, stdout.Result, stderr.Result, ms);
    }

    private sealed record ProbeRun(bool Hung, int ExitCode, string Stdout, string Stderr, long Milliseconds);
}
