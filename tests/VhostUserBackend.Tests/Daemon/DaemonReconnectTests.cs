using System.Diagnostics;

namespace VhostUserBackend.Tests.Daemon;

[Collection("FdCount")]
public sealed class DaemonReconnectTests
{
    [Fact]
    public void Frontend_Reconnects1000Times_FdsAndThreadsStayFlat()
    {
        var device = new CopyDevice(queues: 2, groups: [0b01, 0b10]);
        string path = DaemonRig.NewSocketPath();
        using var daemon = new VhostUserDaemon(device);
        daemon.Start(path);

        void Cycle(int i)
        {
            using var rig = new DaemonRig(device, daemon, path, ramSize: 1 << 20);
            rig.Connect(eventIdx: (i & 1) == 0, packed: (i & 2) == 0);
            rig.Start(eventIdx: (i & 1) == 0, packed: (i & 2) == 0, size: 16);
            rig.Submit(i & 1, DaemonRig.Payload(i, 32));
            rig.Complete(i & 1);
            rig.DisconnectFrontend();
            DaemonRig.WaitDisconnected(daemon, i + 1);
        }

        Cycle(0);
        int fds = TestHelpers.OpenFdCount();
        int threads = Process.GetCurrentProcess().Threads.Count;
        var watch = Stopwatch.StartNew();
        for (int i = 1; i <= 1000; i++)
        {
            Cycle(i);
        }

        watch.Stop();
        Assert.Equal(fds, TestHelpers.OpenFdCount());
        Assert.InRange(Process.GetCurrentProcess().Threads.Count, 0, threads + 2);
        Assert.Equal(1001, daemon.ConnectionCount);
        Assert.Equal(1001, device.Completed);
        Assert.True(device.ResetCount >= 1001, "the device was not reset at every disconnect");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"1000 reconnects took {watch.Elapsed}");

        // Everything the connections mapped is gone: no ring is ready, no fd is kept.
        foreach (Vring v in daemon.Vrings)
        {
            Assert.False(v.IsStarted);
            Assert.False(v.Queue.IsReady);
            Assert.Null(v.Kick);
            Assert.Null(v.Call);
        }
    }

    [Fact]
    public void DisposedWhileConnected_ReleasesEverything_AndDisposeTwiceIsHarmless()
    {
        int fds = TestHelpers.OpenFdCount();
        var device = new CopyDevice();
        var daemon = new VhostUserDaemon(device);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using (var rig = new DaemonRig(device, daemon, path))
        {
            rig.Connect(eventIdx: true, packed: false);
            rig.Start(eventIdx: true, packed: false);
            rig.Submit(0, DaemonRig.Payload(1));
            rig.Complete(0);
            daemon.Dispose();
            Assert.Throws<Vhost.User.VhostUserConnectionClosedException>(() => rig.Frontend!.GetQueueNum());
            daemon.Dispose();
            Assert.False(File.Exists(path));
        }

        Assert.Equal(fds, TestHelpers.OpenFdCount());
    }
}
