using Vhost.HostileTests.Targets;
using VhostUserBackend;

namespace Vhost.HostileTests.Frontend;

/// <summary>The postcopy scenarios against an in-process daemon that offers postcopy (<see cref="VhostUserDaemonOptions.Postcopy"/>), so they reach the userfaultfd code instead of the PAGEFAULT gate.</summary>
[Collection("FdCount")]
public sealed class InProcessPostcopyHostileTests(ITestOutputHelper output) : HostileFrontendSuite(output)
{
    /// <inheritdoc/>
    protected override IDaemonTarget CreateTarget() => new InProcessTarget(new VhostUserDaemonOptions { Postcopy = true });

    /// <summary>Every postcopy scenario survives: clean errors, no leaked userfaultfd, no worker left asleep in a fault.</summary>
    [Fact]
    public void Postcopy_message_abuse()
    {
        // RunCategories fails on any scenario not survived; here also: every postcopy scenario ran.
        ScenarioRunner runner = RunCategories(PostcopyScenarios.Category);
        Assert.Equal(PostcopyScenarios.All().Count(), runner.Results.Count);
        Assert.All(runner.Results, r => Assert.Equal(ScenarioOutcome.Survived, r.Outcome));
    }
}
