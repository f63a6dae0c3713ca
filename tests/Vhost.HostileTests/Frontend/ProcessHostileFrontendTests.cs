using Vhost.HostileTests.Targets;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// The hostile-frontend suite against each daemon named in <c>VHOST_HOSTILE_TARGET</c>
/// (<c>process:COMMAND</c>, several separated by <c>;;</c>), by default every sample daemon of this
/// repository (vhost-user-blk, -rng, -net, -input), each as a separate process.
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
        _specification = specs[index];
        Assert.StartsWith("process:", _specification, StringComparison.Ordinal);

        // Fails with the table of scenarios tried / survived / crashed / hung / fd leaks.
        RunCategories();
    }
}
