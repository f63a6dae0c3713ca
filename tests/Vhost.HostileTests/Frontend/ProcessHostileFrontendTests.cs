using Vhost.HostileTests.Targets;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// The hostile-frontend suite against each daemon named in <c>VHOST_HOSTILE_TARGET</c>
/// (<c>process:COMMAND</c>, several separated by <c>;;</c>): a sample daemon as a separate process.
/// Skipped when the variable is unset.
/// </summary>
[Collection("FdCount")]
public sealed class ProcessHostileFrontendTests(ITestOutputHelper output) : HostileFrontendSuite(output)
{
    private string? _specification;

    public static TheoryData<int> Targets()
    {
        var data = new TheoryData<int>();
        int n = Math.Max(1, DaemonTargets.FromEnvironment().Count);
        for (int i = 0; i < n; i++)
        {
            data.Add(i);
        }

        return data;
    }

    /// <inheritdoc/>
    protected override IDaemonTarget CreateTarget() => DaemonTargets.Create(_specification!);

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_scenario_against_a_daemon_process(int index)
    {
        IReadOnlyList<string> specs = DaemonTargets.FromEnvironment();
        if (specs.Count == 0)
        {
            Assert.Skip($"set {DaemonTargets.EnvironmentVariable}=process:COMMAND (for example process:samples/VhostUserRng/bin/Release/net10.0/vhost-user-rng) to run the suite against a daemon process");
        }

        _specification = specs[index];
        RunCategories();
    }
}
