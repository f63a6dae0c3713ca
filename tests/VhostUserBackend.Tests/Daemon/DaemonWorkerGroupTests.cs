using Vhost;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// Several daemons on one <see cref="VhostUserWorkerGroup"/> (the ports of a virtual switch):
/// their rings are served on the group's thread, a busy port cannot starve another while polling,
/// and a port that goes away leaves the others running.
/// </summary>
public sealed class DaemonWorkerGroupTests
{
    [Fact]
    public void Two_daemons_in_a_one_thread_group_are_served_on_that_one_thread()
    {
        using var group = new VhostUserWorkerGroup(1);
        var a = new CopyDevice(queues: 1);
        var b = new CopyDevice(queues: 1);
        using Port pa = Port.Create(a, group);
        using Port pb = Port.Create(b, group);
        for (int i = 0; i < 20; i++)
        {
            pa.Rig.Submit(0, DaemonRig.Payload(i));
            pb.Rig.Submit(0, DaemonRig.Payload(100 + i));
            pa.Rig.Complete(0);
            pb.Rig.Complete(0);
        }

        Assert.Single(a.HandlerThreadIds);
        Assert.Equal(a.HandlerThreadIds.Keys, b.HandlerThreadIds.Keys);
    }

    /// <summary>
    /// Polling over two ports on one thread: port A streams without pause, port B sends one
    /// request at a time; every one of B's requests completes promptly (before, each port polled
    /// on a thread of its own, and two pollers on two cores starved each other and the front-end).
    /// A starved port waits out the polling window (10 s here); the bound is well below it and well
    /// above what a loaded 2-core host adds (three busy threads share the cores in this test).
    /// </summary>
    [Fact]
    public async Task While_polling_a_busy_port_does_not_starve_another_port_on_the_same_thread()
    {
        using var group = new VhostUserWorkerGroup(1, pollingTime: TimeSpan.FromSeconds(10));
        var a = new CopyDevice(queues: 1);
        var b = new CopyDevice(queues: 1);
        using Port pa = Port.Create(a, group);
        using Port pb = Port.Create(b, group);
        using var stop = new CancellationTokenSource();
        long streamed = 0;
        Task stream = Task.Run(() =>
        {
            int i = 0;
            while (!stop.IsCancellationRequested)
            {
                pa.Rig.Submit(0, DaemonRig.Payload(i++));
                pa.Rig.Complete(0);
                streamed++;
            }
        }, TestContext.Current.CancellationToken);

        var slowest = TimeSpan.Zero;
        var total = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 50 || total.ElapsedMilliseconds < 1000; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            pb.Rig.Submit(0, DaemonRig.Payload(1000 + i));
            pb.Rig.Complete(0, timeoutMs: 5000);
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            Thread.Sleep(5);
        }

        stop.Cancel();
        await stream;
        Assert.True(streamed > 50, $"port A completed only {streamed} requests while streaming");
        Assert.True(slowest < TimeSpan.FromMilliseconds(2500), $"port B waited {slowest.TotalMilliseconds:F0} ms for one request while port A streamed");
    }

    [Fact]
    public void A_port_that_goes_away_leaves_the_others_running()
    {
        using var group = new VhostUserWorkerGroup(1);
        var a = new CopyDevice(queues: 1);
        var b = new CopyDevice(queues: 1);
        using Port pb = Port.Create(b, group);
        using (Port pa = Port.Create(a, group))
        {
            pa.Rig.Submit(0, DaemonRig.Payload(1));
            pa.Rig.Complete(0);
        }

        for (int i = 0; i < 5; i++)
        {
            pb.Rig.Submit(0, DaemonRig.Payload(i));
            pb.Rig.Complete(0);
        }

        Assert.True(pb.Daemon.Workers[0].IsRunning);
    }

    [Fact]
    public void A_devices_exit_event_in_a_group_detaches_that_device_only()
    {
        using var group = new VhostUserWorkerGroup(1);
        var a = new CopyDevice(queues: 1) { WithExitEvents = true };
        var b = new CopyDevice(queues: 1);
        using Port pa = Port.Create(a, group);
        using Port pb = Port.Create(b, group);
        a.ExitEvents[0].Signal();
        Poll.Until(() => !pa.Daemon.Workers[0].IsRunning);
        for (int i = 0; i < 5; i++)
        {
            pb.Rig.Submit(0, DaemonRig.Payload(i));
            pb.Rig.Complete(0);
        }

        Assert.True(pb.Daemon.Workers[0].IsRunning);
    }

    [Fact]
    public void A_device_with_more_workers_than_the_group_has_threads_is_refused()
    {
        using var group = new VhostUserWorkerGroup(1);
        var device = new CopyDevice(queues: 2, groups: [1, 2]);
        var e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(device, new VhostUserDaemonOptions { WorkerGroup = group }));
        Assert.Contains("2 workers", e.Message, StringComparison.Ordinal);
    }

    private sealed class Port : IDisposable
    {
        private Port(VhostUserDaemon daemon, DaemonRig rig)
        {
            Daemon = daemon;
            Rig = rig;
        }

        public VhostUserDaemon Daemon { get; }

        public DaemonRig Rig { get; }

        public static Port Create(CopyDevice device, VhostUserWorkerGroup group)
        {
            var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { WorkerGroup = group });
            string path = DaemonRig.NewSocketPath();
            daemon.Start(path);
            var rig = new DaemonRig(device, daemon, path);
            rig.Connect(eventIdx: true, packed: false);
            rig.Start(eventIdx: true, packed: false);
            return new Port(daemon, rig);
        }

        public void Dispose()
        {
            Rig.Dispose();
            Daemon.Dispose();
        }
    }
}
