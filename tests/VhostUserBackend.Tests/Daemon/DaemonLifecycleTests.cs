using Vhost;
using Vhost.User;

namespace VhostUserBackend.Tests.Daemon;

public sealed class DaemonLifecycleTests
{
    [Fact]
    public async Task ConnectedSocket_ServesOneFrontend_AndEndsWhenItLeaves()
    {
        var device = new CopyDevice();
        using var daemon = new VhostUserDaemon(device);
        (Microsoft.Win32.SafeHandles.SafeFileHandle ours, Microsoft.Win32.SafeHandles.SafeFileHandle theirs) = UnixSocket.CreatePair();
        daemon.Start(theirs);
        using (var frontend = new VhostUserFrontend(new VhostUserConnection(ours)))
        {
            Assert.NotEqual(0UL, frontend.GetFeatures());
            Assert.False(daemon.WaitAsync(TestContext.Current.CancellationToken).IsCompleted);
        }

        await daemon.WaitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Equal(1, daemon.ConnectionCount);
    }

    [Fact]
    public async Task WaitAsync_HonoursCancellation_StopAsync_DisconnectsTheFrontendAndCompletes()
    {
        using var daemon = new VhostUserDaemon(new CopyDevice());
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        Assert.True(File.Exists(path), "Start is synchronous: the socket listens when it returns");
        using (var cts = new CancellationTokenSource(50))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => daemon.WaitAsync(cts.Token));
        }

        using var frontend = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(5));
        Assert.NotEqual(0UL, frontend.GetFeatures());
        Task stopped = daemon.StopAsync(TestContext.Current.CancellationToken);
        await stopped.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.True(daemon.WaitAsync(TestContext.Current.CancellationToken).IsCompleted, "WaitAsync completes once StopAsync has");
        Assert.False(daemon.IsConnected);
        Assert.ThrowsAny<VhostException>(() => frontend.GetFeatures());
        Assert.Throws<InvalidOperationException>(() => daemon.Start(DaemonRig.NewSocketPath()));
        await daemon.StopAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task StopAsync_OnAConnectedSocketDaemonWhoseFrontendLeft_Completes()
    {
        using var daemon = new VhostUserDaemon(new CopyDevice());
        (Microsoft.Win32.SafeHandles.SafeFileHandle ours, Microsoft.Win32.SafeHandles.SafeFileHandle theirs) = UnixSocket.CreatePair();
        daemon.Start(theirs);
        using (var frontend = new VhostUserFrontend(new VhostUserConnection(ours)))
        {
            Assert.NotEqual(0UL, frontend.GetFeatures());
        }

        await daemon.WaitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        await daemon.StopAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task StopAsync_BeforeStart_Completes()
    {
        using var daemon = new VhostUserDaemon(new CopyDevice());
        await daemon.StopAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.True(daemon.WaitAsync(TestContext.Current.CancellationToken).IsCompleted);
    }

    [Fact]
    public void Run_BlocksUntilCancelled()
    {
        using var daemon = new VhostUserDaemon(new CopyDevice());
        using var cts = new CancellationTokenSource();
        string path = DaemonRig.NewSocketPath();
        var runner = new Thread(() => daemon.Run(path, cts.Token));
        runner.Start();
        using (VhostUserFrontend f = VhostUserFrontend.Connect(path, TimeSpan.FromSeconds(5)))
        {
            Assert.NotEqual(0UL, f.GetFeatures());
        }

        Assert.False(runner.Join(100));
        cts.Cancel();
        Assert.True(runner.Join(5000));
    }

    [Fact]
    public void InvalidDevices_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 2, groups: [0b01])));
        Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 2, groups: [0b11, 0b10])));
        Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 2, groups: [0b111])));
        Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(maxQueueSize: 100)));
        Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 0, groups: [1])));
    }

    [Fact]
    public void RegisteredListener_ReachesHandleEvent_ReservedDataIsRejected()
    {
        var device = new CopyDevice(queues: 2);
        using var daemon = new VhostUserDaemon(device);
        daemon.Start(DaemonRig.NewSocketPath());
        VhostUserWorker worker = daemon.Workers[0];
        using var fd = new EventFd(EventFdFlags.NonBlocking);
        Assert.Throws<ArgumentOutOfRangeException>(() => worker.RegisterListener(fd, VringEpollEvents.In, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => worker.RegisterListener(fd, VringEpollEvents.In, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => worker.RegisterListener(fd, VringEpollEvents.In, ulong.MaxValue));
        worker.RegisterListener(fd, VringEpollEvents.In | VringEpollEvents.EdgeTriggered, 42);
        fd.Signal();
        long deadline = Environment.TickCount64 + 5000;
        while (device.ListenerEvents.IsEmpty)
        {
            Assert.True(Environment.TickCount64 < deadline, "the listener event never reached the device");
            Thread.Sleep(1);
        }

        Assert.Contains(device.ListenerEvents, e => e.Event == 42 && (e.Events & VringEpollEvents.In) != 0 && e.Thread == 0);
        worker.UnregisterListener(fd);
        Assert.Throws<VhostException>(() => worker.UnregisterListener(fd));
    }

    [Fact]
    public void KicksArrivingWhileDisabled_AreProcessedOnEnable()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        f.SetVringEnable(0, false);
        rig.Submit(0, DaemonRig.Payload(3));
        Thread.Sleep(100);
        Assert.Equal(0, rig.Device.Completed);
        f.SetVringEnable(0, true);
        rig.Complete(0);
    }

    [Fact]
    public void GetVringBase_StopsTheRing_AndARestartResumesWhereItStopped()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);
        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Complete(0);
        }

        Assert.Equal(5u, f.GetVringBase(0));
        Assert.False(rig.Daemon.Vrings[0].IsStarted);
        rig.Submit(0, DaemonRig.Payload(9));
        rig.Queues[0].Kick.Signal();
        Thread.Sleep(100);
        Assert.Equal(5, rig.Device.Completed);

        rig.StartQueue(0, packed: false, baseValue: 5);
        f.SetVringEnable(0, true);
        rig.Complete(0);
        Assert.Equal(6, rig.Device.Completed);
    }

    /// <summary>
    /// QEMU 7.2 (vhost-user-net) enables a ring once and later sends a new kick fd: the new kick
    /// must not disable the ring again, or the guest's traffic never flows.
    /// </summary>
    [Fact]
    public void ANewKickFd_KeepsTheRingEnabled()
    {
        using var rig = new DaemonRig(new CopyDevice());
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        using var newKick = new EventFd();
        f.SetVringKick(0, newKick);
        Assert.True(rig.Daemon.Vrings[0].IsEnabled);
        Assert.True(rig.Daemon.Vrings[0].IsStarted);

        rig.Submit(0, DaemonRig.Payload(2));
        newKick.Signal();
        rig.Complete(0);
        Assert.Equal(2, rig.Device.Completed);
    }
}
