using Vhost.HostileTests.Frontend;
using Vhost.HostileTests.Targets;

namespace Vhost.HostileTests.Memory;

/// <summary>A front-end shrinks an unsealable guest-RAM file under the daemon (SIGBUS on the next access).</summary>
[Collection("FdCount")]
public sealed class ShrunkGuestMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void The_blk_sample_survives_a_truncated_guest_memory_file_and_serves_the_next_front_end()
    {
        using var target = new ProcessTarget($"dotnet {DaemonTargets.SampleAssembly("vhost-user-blk")} --socket-path {{socket}}");
        using (ShrunkGuestMemory attack = ShrunkGuestMemory.Start(target.SocketPath))
        {
            attack.TruncateAndKick();
            Thread.Sleep(2000);
            output.WriteLine($"alive: {target.IsAlive}\n{target.Diagnostics()}");
            Assert.True(target.IsAlive, target.Diagnostics());
        }

        ScenarioRunner.CheckHealthy(target);
    }
}
