using Vhost.HostileTests.Targets;
using Xunit.Sdk;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// The hostile-frontend suite against one daemon: one test per class of attack. After every
/// scenario the daemon must be alive, answer a fresh connection, complete a well-formed request,
/// and hold no more fds than before. Subclasses say which daemon (<see cref="CreateTarget"/>).
/// </summary>
public abstract class HostileFrontendSuite
{
    private readonly ITestOutputHelper _output;

    /// <summary>Creates the suite.</summary>
    /// <param name="output">Where the summary goes.</param>
    protected HostileFrontendSuite(ITestOutputHelper output) => _output = output;

    /// <summary>Every scenario, all classes.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> AllScenarios()
        => ProtocolScenarios.All().Concat(MemoryAndVringScenarios.All()).Concat(GuestAndExhaustionScenarios.All()).Concat(MigrationScenarios.All()).Concat(DeviceStateScenarios.All()).Concat(PostcopyScenarios.All()).Concat(PackedInflightScenarios.All()).Concat(ShrunkMemoryScenarios.All()).Concat(IotlbScenarios.All());

    /// <summary>Starts the daemon under test (the test disposes it).</summary>
    /// <returns>The target.</returns>
    protected abstract IDaemonTarget CreateTarget();

    /// <summary>Runs every scenario of <paramref name="categories"/> (all when empty), prints the tally, and fails on any scenario not survived.</summary>
    /// <param name="categories">The classes.</param>
    /// <returns>The runner, for further checks.</returns>
    protected ScenarioRunner RunCategories(params string[] categories)
    {
        IDaemonTarget target = CreateTarget();
        ScenarioRunner runner;
        try
        {
            runner = RunAll(target, categories);
        }
        catch
        {
            Stop(target, StopLimit, _output, throwOnTimeout: false);
            throw;
        }

        Stop(target, StopLimit, _output, throwOnTimeout: true);
        return runner;
    }

    /// <summary>After this many hung scenarios the rest of a class is not run (the test has failed).</summary>
    public const int MaxHung = 3;

    /// <summary>How long the daemon under test may take to stop after the last scenario.</summary>
    public static TimeSpan StopLimit { get; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Disposes the target on a thread of its own and waits at most <paramref name="limit"/>: a
    /// daemon thread a scenario left stuck fails the test (or, when it already failed, is
    /// written to the output) instead of hanging the whole test run.
    /// </summary>
    internal static void Stop(IDaemonTarget target, TimeSpan limit, ITestOutputHelper output, bool throwOnTimeout)
    {
        var stop = new Thread(target.Dispose) { IsBackground = true, Name = "hostile target stop" };
        stop.Start();
        if (stop.Join(limit))
        {
            return;
        }

        string message = $"{target.Name} did not stop within {limit.TotalSeconds} s after the scenarios: a thread of it is stuck (left running; the test run goes on)";
        output.WriteLine(message);
        if (throwOnTimeout)
        {
            throw new XunitException(message);
        }
    }

    private ScenarioRunner RunAll(IDaemonTarget target, string[] categories)
    {
        ScenarioRunner.CheckHealthy(target);
        var runner = new ScenarioRunner(target);
        List<HostileScenario> scenarios = [.. AllScenarios().Where(s => categories.Length == 0 || categories.Contains(s.Category))];
        string stoppedEarly = string.Empty;
        foreach (HostileScenario s in scenarios)
        {
            // A daemon that hung three times is stuck for good: each further scenario would only
            // wait out its limits (25 s each). The test fails either way.
            if (runner.Results.Count(r => r.Outcome == ScenarioOutcome.Hung) >= MaxHung)
            {
                stoppedEarly = $"stopped after {MaxHung} hung scenarios; {scenarios.Count - runner.Results.Count} not run\n";
                break;
            }

            runner.Run(s);
        }

        string summary = runner.Summary() + stoppedEarly;
        _output.WriteLine(summary);
        SummaryFile.Append(summary);
        Assert.NotEmpty(runner.Results);
        var failed = runner.Results.Where(r => r.Outcome != ScenarioOutcome.Survived).ToList();
        if (failed.Count > 0 || stoppedEarly.Length > 0)
        {
            throw new XunitException($"{failed.Count} of {runner.Results.Count} scenarios not survived:\n{summary}");
        }

        Assert.True(target.IsAlive);
        return runner;
    }
}
