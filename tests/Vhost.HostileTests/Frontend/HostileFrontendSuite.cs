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
        using IDaemonTarget target = CreateTarget();
        ScenarioRunner.CheckHealthy(target);
        var runner = new ScenarioRunner(target);
        foreach (HostileScenario s in AllScenarios().Where(s => categories.Length == 0 || categories.Contains(s.Category)))
        {
            runner.Run(s);
        }

        string summary = runner.Summary();
        _output.WriteLine(summary);
        SummaryFile.Append(summary);
        Assert.NotEmpty(runner.Results);
        var failed = runner.Results.Where(r => r.Outcome != ScenarioOutcome.Survived).ToList();
        if (failed.Count > 0)
        {
            throw new XunitException($"{failed.Count} of {runner.Results.Count} scenarios not survived:\n{summary}");
        }

        Assert.True(target.IsAlive);
        return runner;
    }
}
