using Vhost.HostileTests.Targets;
using Xunit.Sdk;

namespace Vhost.HostileTests.Frontend;

/// <summary>A daemon under test that cannot stop fails its suite test instead of hanging the run.</summary>
public sealed class SuiteStopTests(ITestOutputHelper output)
{
    [Fact]
    public void A_target_whose_dispose_hangs_fails_the_test_within_the_limit()
    {
        using var release = new ManualResetEventSlim();
        var target = new StuckTarget(release);
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            XunitException e = Assert.Throws<XunitException>(() => HostileFrontendSuite.Stop(target, TimeSpan.FromMilliseconds(300), output, throwOnTimeout: true));
            Assert.Contains("did not stop within 0.3 s", e.Message, StringComparison.Ordinal);
            Assert.InRange(clock.ElapsedMilliseconds, 250, 10_000);

            // When the test already failed, the original failure stands: only written out.
            HostileFrontendSuite.Stop(new StuckTarget(release), TimeSpan.FromMilliseconds(100), output, throwOnTimeout: false);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public void A_target_that_stops_passes()
    {
        using var release = new ManualResetEventSlim(initialState: true);
        var target = new StuckTarget(release);
        HostileFrontendSuite.Stop(target, TimeSpan.FromSeconds(10), output, throwOnTimeout: true);
        Assert.True(target.Disposed);
    }

    private sealed class StuckTarget(ManualResetEventSlim release) : IDaemonTarget
    {
        public bool Disposed { get; private set; }

        public string Name => "stuck target";

        public string SocketPath => "/nonexistent";

        public bool IsAlive => true;

        public IDeviceExercise Exercise { get; } = new StartOnlyExercise();

        public int CountFds() => 0;

        public int CountMappings() => 0;

        public long ResidentKiB() => 0;

        public bool WaitIdle(TimeSpan timeout) => true;

        public string Diagnostics() => string.Empty;

        public void Dispose()
        {
            release.Wait();
            Disposed = true;
        }
    }
}
