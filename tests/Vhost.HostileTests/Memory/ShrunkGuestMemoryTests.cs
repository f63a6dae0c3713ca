using Vhost.HostileTests.Frontend;
using Vhost.HostileTests.Targets;
using Vhost.Vmm;
using VhostUserBackend;

namespace Vhost.HostileTests.Memory;

/// <summary>
/// A front-end shrinks an unsealable guest-RAM file under the daemon, then kicks: the daemon's next
/// access faults (SIGBUS). Before the fault guard the process died (Fatal error,
/// AccessViolationException in SplitQueue.SetUsedFlags); now the connection's rings fail with a
/// clear error, the connection is dropped, and the daemon serves on.
/// </summary>
[Collection("FdCount")]
public sealed class ShrunkGuestMemoryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    [Fact]
    public void The_daemon_fails_the_rings_drops_the_connection_and_another_daemon_in_the_process_serves_on()
    {
        var logs = new TestLogger();
        var attacked = new EchoDevice();
        string path = Path.Combine(Path.GetTempPath(), $"shrunk-{Guid.NewGuid():N}.sock");
        using var daemon = new VhostUserDaemon(attacked, new VhostUserDaemonOptions(), logs);
        daemon.Start(path);
        using var bystander = new InProcessTarget();
        using VmmDevice healthy = VmmDevice.Connect(bystander.SocketPath, bystander.Exercise.Options);
        bystander.Exercise.Run(healthy, Limit);

        using (ShrunkGuestMemory attack = ShrunkGuestMemory.Start(path))
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            attack.TruncateAndKick();
            AssertFailedAndDropped(attack, () => string.Join("\n", logs.Lines));
            output.WriteLine($"truncate + kick to rings failed and connection dropped: {clock.Elapsed.TotalMilliseconds:F1} ms");
            Assert.Equal(0, Interlocked.Read(ref attacked.Completed));
            Assert.Contains(logs.Lines, l => l.Contains("GuestMemoryLost", StringComparison.Ordinal) && l.Contains("shrank the file", StringComparison.Ordinal));
            Assert.Contains(logs.Lines, l => l.Contains("shrunk under the daemon by the front-end", StringComparison.Ordinal));
        }

        // The other daemon's front-end never noticed; the attacked daemon takes the next one.
        bystander.Exercise.Run(healthy, Limit);
        Assert.False(daemon.WaitAsync(TestContext.Current.CancellationToken).IsCompleted);
        using VmmDevice next = VmmDevice.Connect(path, new EchoExercise().Options);
        new EchoExercise().Run(next, Limit);
        output.WriteLine(string.Join("\n", logs.Lines.Where(l => l.Contains("guest memory", StringComparison.OrdinalIgnoreCase))));
    }

    [Fact]
    public void The_blk_sample_process_survives_and_serves_the_next_front_end()
    {
        using var target = new ProcessTarget($"dotnet {DaemonTargets.SampleAssembly("vhost-user-blk")} --socket-path {{socket}}");
        using (ShrunkGuestMemory attack = ShrunkGuestMemory.Start(target.SocketPath))
        {
            attack.TruncateAndKick();
            AssertFailedAndDropped(attack, target.Diagnostics);
            Assert.True(target.IsAlive, target.Diagnostics());
        }

        ScenarioRunner.CheckHealthy(target);
        output.WriteLine(target.Diagnostics());
    }

    /// <summary>The error eventfd of queue 0 is signalled and the daemon closes the connection (the next request fails).</summary>
    private static void AssertFailedAndDropped(ShrunkGuestMemory attack, Func<string> diagnostics)
    {
        long deadline = Environment.TickCount64 + (long)Limit.TotalMilliseconds;
        ulong signalled = 0;
        while (!attack.Error.TryRead(out signalled) && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(5);
        }

        Assert.True(signalled > 0, "queue 0's error eventfd was not signalled: " + diagnostics());
        Exception? dropped = null;
        while (dropped is null && Environment.TickCount64 < deadline)
        {
            try
            {
                attack.Frontend.GetFeatures();
                Thread.Sleep(10);
            }
            catch (Exception e)
            {
                dropped = e;
            }
        }

        Assert.True(dropped is not null, "the daemon kept the connection: " + diagnostics());
    }
}
