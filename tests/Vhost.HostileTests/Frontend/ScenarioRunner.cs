using System.Diagnostics;
using System.Text;
using Vhost.HostileTests.Targets;
using Vhost.Vmm;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// Runs scenarios against a target and checks the daemon after each: alive, answers a fresh
/// connection, completes a well-formed request, holds no more fds than before. Keeps the tally.
/// </summary>
public sealed class ScenarioRunner
{
    private readonly IDaemonTarget _target;
    private readonly List<(HostileScenario Scenario, ScenarioOutcome Outcome, string Detail)> _results = [];

    /// <summary>Creates a runner.</summary>
    /// <param name="target">The daemon.</param>
    public ScenarioRunner(IDaemonTarget target) => _target = target;

    /// <summary>How long an attack may take before the scenario counts as hung.</summary>
    public static TimeSpan AttackLimit { get; } = TimeSpan.FromSeconds(20);

    /// <summary>How long the health check may take.</summary>
    public static TimeSpan HealthLimit { get; } = TimeSpan.FromSeconds(5);

    /// <summary>Every result so far.</summary>
    public IReadOnlyList<(HostileScenario Scenario, ScenarioOutcome Outcome, string Detail)> Results => _results;

    /// <summary>Runs one scenario and records its outcome.</summary>
    /// <param name="scenario">The scenario.</param>
    /// <returns>The outcome.</returns>
    public ScenarioOutcome Run(HostileScenario scenario)
    {
        (ScenarioOutcome outcome, string detail) = RunCore(scenario);
        _results.Add((scenario, outcome, detail));
        return outcome;
    }

    /// <summary>The health check alone: a fresh connection completes a well-formed request.</summary>
    /// <param name="target">The daemon.</param>
    public static void CheckHealthy(IDaemonTarget target)
    {
        using VmmDevice device = VmmDevice.Connect(target.SocketPath, target.Exercise.Options, HealthLimit);
        target.Exercise.Run(device, HealthLimit);
    }

    /// <summary>A table of the results by category, and the failures.</summary>
    /// <returns>Text.</returns>
    public string Summary()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"target: {_target.Name}");
        sb.AppendLine($"{"category",-28} {"tried",5} {"survived",8} {"crashed",7} {"hung",4} {"fd-leaks",8} {"broken",6}");
        foreach (IGrouping<string, (HostileScenario Scenario, ScenarioOutcome Outcome, string Detail)> g in _results.GroupBy(r => r.Scenario.Category))
        {
            sb.AppendLine(Line(g.Key, [.. g]));
        }

        sb.AppendLine(Line("total", _results));
        foreach ((HostileScenario s, ScenarioOutcome o, string d) in _results.Where(r => r.Outcome != ScenarioOutcome.Survived))
        {
            sb.AppendLine($"  {o}: {s} -- {d}");
        }

        return sb.ToString();
    }

    private static string Line(string name, IReadOnlyCollection<(HostileScenario Scenario, ScenarioOutcome Outcome, string Detail)> rows)
        => $"{name,-28} {rows.Count,5} {Count(rows, ScenarioOutcome.Survived),8} {Count(rows, ScenarioOutcome.Crashed),7} {Count(rows, ScenarioOutcome.Hung),4} {Count(rows, ScenarioOutcome.FdLeak),8} {Count(rows, ScenarioOutcome.Broken),6}";

    private static int Count(IEnumerable<(HostileScenario Scenario, ScenarioOutcome Outcome, string Detail)> rows, ScenarioOutcome o) => rows.Count(r => r.Outcome == o);

    private (ScenarioOutcome, string) RunCore(HostileScenario scenario)
    {
        if (!_target.IsAlive)
        {
            return (ScenarioOutcome.Crashed, "dead before the scenario: " + _target.Diagnostics());
        }

        _target.WaitIdle(HealthLimit);
        int before = _target.CountFds();
        Exception? attackError = null;
        var attack = new Thread(() =>
        {
            try
            {
                scenario.Attack(_target);
            }
            catch (Exception e)
            {
                attackError = e;
            }
        })
        { IsBackground = true, Name = "attack" };
        var clock = Stopwatch.StartNew();
        attack.Start();
        if (!attack.Join(AttackLimit))
        {
            return (ScenarioOutcome.Hung, $"the attack did not finish in {AttackLimit.TotalSeconds} s");
        }

        if (!_target.IsAlive)
        {
            return (ScenarioOutcome.Crashed, _target.Diagnostics());
        }

        if (!_target.WaitIdle(HealthLimit))
        {
            return (ScenarioOutcome.Hung, "the daemon did not release the hostile front-end");
        }

        try
        {
            CheckHealthy(_target);
        }
        catch (TimeoutException e)
        {
            return (ScenarioOutcome.Hung, e.Message);
        }
        catch (Exception e)
        {
            return (_target.IsAlive ? ScenarioOutcome.Broken : ScenarioOutcome.Crashed, $"{e.GetType().Name}: {e.Message} {_target.Diagnostics()}");
        }

        _target.WaitIdle(HealthLimit);
        int after = ProcFs.Settle(_target.CountFds, before, TimeSpan.FromSeconds(2));
        if (after > before)
        {
            return (ScenarioOutcome.FdLeak, $"{before} fds before, {after} after" + (attackError is null ? string.Empty : $" (attack: {attackError.Message})"));
        }

        string note = attackError is null ? $"{clock.ElapsedMilliseconds} ms" : $"{clock.ElapsedMilliseconds} ms; attack ended with {attackError.GetType().Name}: {attackError.Message}";
        return (ScenarioOutcome.Survived, note);
    }
}
