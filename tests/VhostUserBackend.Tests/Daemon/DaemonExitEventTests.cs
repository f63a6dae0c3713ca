using Vhost;
using Vhost.User;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>The device's per-worker exit eventfd (IVhostUserBackend.CreateExitEvent).</summary>
public sealed class DaemonExitEventTests
{
    [Fact]
    public void ExitEvent_StopsItsWorkerOnly_DaemonKeepsServing_AndDisposesTheEventFd()
    {
        var logs = new TestLogger();
        using var factory = logs;
        var device = new CopyDevice(queues: 2, groups: [0b01, 0b10]) { WithExitEvents = true };
        var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        Assert.Equal([0, 1], device.ExitEvents.Keys.Order());
        EventFd exit0 = device.ExitEvents[0];
        EventFd exit1 = device.ExitEvents[1];
        using (var rig = new DaemonRig(device, daemon, path))
        {
            VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
            rig.Start(eventIdx: true, packed: false);
            for (int i = 0; i < 10; i++)
            {
                rig.Submit(i % 2, DaemonRig.Payload(i));
                rig.Complete(i % 2);
            }

            exit1.Signal();
            long deadline = Environment.TickCount64 + 5000;
            while (daemon.Workers[1].IsRunning)
            {
                Assert.True(Environment.TickCount64 < deadline, "worker 1 did not stop on its exit event");
                Thread.Sleep(1);
            }

            Assert.Contains(logs.Lines, e => e.Contains("worker 1 stopped by the device's exit event", StringComparison.Ordinal));
            Assert.True(daemon.Workers[0].IsRunning);

            // Queue 1 is no longer served; queue 0 is, and the control thread still changes both rings.
            long before = device.Completed;
            rig.Submit(1, DaemonRig.Payload(100));
            for (int i = 0; i < 10; i++)
            {
                rig.Submit(0, DaemonRig.Payload(200 + i));
                rig.Complete(0);
            }

            Assert.Equal(before + 10, device.Completed);
            f.SetVringCall(1, rig.Queues[1].Call);
            f.GetVringBase(1);
            Assert.False(daemon.Vrings[1].IsStarted);
            Assert.Equal(2, f.GetQueueNum());
            Assert.False(exit1.IsClosed);
        }

        daemon.Dispose();
        Assert.True(exit0.IsClosed);
        Assert.True(exit1.IsClosed);
        Assert.False(daemon.Workers[0].IsRunning);
    }
}
