using Vhost.HostileTests.Targets;
using Vhost.User;
using VhostUserBackend;
using Vhost.Vmm;

namespace Vhost.HostileTests.Frontend;

/// <summary>200 full set-up/close cycles with fd count, mappings and memory flat; the peer-credential check.</summary>
[Collection("FdCount")]
public sealed class LifecycleTests(ITestOutputHelper output)
{
    [Fact]
    public void Two_hundred_full_setup_close_cycles_leave_fds_mappings_and_memory_flat()
    {
        using var target = new InProcessTarget();
        for (int i = 0; i < 20; i++)
        {
            ScenarioRunner.CheckHealthy(target);
        }

        target.WaitIdle(TimeSpan.FromSeconds(5));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int fds = target.CountFds();
        int maps = target.CountMappings();
        long rss = target.ResidentKiB();
        for (int i = 0; i < 200; i++)
        {
            ScenarioRunner.CheckHealthy(target);
        }

        target.WaitIdle(TimeSpan.FromSeconds(5));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int fdsAfter = ProcFs.Settle(target.CountFds, fds, TimeSpan.FromSeconds(2));
        int mapsAfter = ProcFs.Settle(target.CountMappings, maps, TimeSpan.FromSeconds(2));
        long rssAfter = target.ResidentKiB();
        output.WriteLine($"fds {fds} -> {fdsAfter}, mappings {maps} -> {mapsAfter}, RSS {rss} KiB -> {rssAfter} KiB");
        Assert.Equal(fds, fdsAfter);
        Assert.True(mapsAfter <= maps + 50, $"mappings grew from {maps} to {mapsAfter}");
        Assert.True(rssAfter - rss < 64 * 1024, $"RSS grew from {rss} KiB to {rssAfter} KiB");
    }

    [Fact]
    public void A_peer_with_a_uid_not_allowed_is_disconnected_and_the_daemon_serves_the_next()
    {
        string path = Path.Combine(Path.GetTempPath(), $"peer-{Guid.NewGuid():N}.sock");
        uint me = GetUid();
        using (var refused = new VhostUserDaemon(new EchoDevice(), new VhostUserDaemonOptions { AllowedPeerUserIds = [me + 1] }))
        {
            refused.Start(path);
            using VhostUserFrontend f = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(5));
            var e = Assert.ThrowsAny<VhostUserException>(() => f.GetFeatures());
            Assert.IsType<VhostUserConnectionClosedException>(e);
        }

        string path2 = Path.Combine(Path.GetTempPath(), $"peer-{Guid.NewGuid():N}.sock");
        using var allowed = new VhostUserDaemon(new EchoDevice(), new VhostUserDaemonOptions { AllowedPeerUserIds = [me], AllowedPeerGroupIds = [GetGid()] });
        allowed.Start(path2);
        using VmmDevice dev = VmmDevice.Connect(path2, new EchoExercise().Options);
        new EchoExercise().Run(dev, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void The_socket_is_created_with_mode_0600()
    {
        using var target = new InProcessTarget();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(target.SocketPath));
    }

    private static uint GetUid() => uint.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);

    private static uint GetGid() => uint.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("Gid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
}
