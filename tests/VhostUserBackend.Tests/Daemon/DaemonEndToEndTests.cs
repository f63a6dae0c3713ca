using System.Diagnostics.Metrics;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace VhostUserBackend.Tests.Daemon;

public sealed class DaemonEndToEndTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Kick_IsProcessed_CallFires_UsedRingAndBuffersAreRight(bool eventIdx, bool packed)
    {
        using var rig = new DaemonRig(new CopyDevice());
        rig.Connect(eventIdx, packed);
        rig.Start(eventIdx, packed);
        RigQueue q = rig.Queues[0];

        // One request: the call eventfd must fire.
        rig.Submit(0, DaemonRig.Payload(1));
        Assert.True(UnixSocket.WaitReady(q.Call, Interop.POLLIN, 5000), "the call eventfd did not fire");
        rig.Complete(0);

        // Many more, in bursts, with lengths that vary.
        for (int round = 0; round < 50; round++)
        {
            int burst = 1 + (round % 7);
            for (int i = 0; i < burst; i++)
            {
                rig.Submit(0, DaemonRig.Payload((round * 10) + i, 1 + ((round * 37 + i * 11) % 500)));
            }

            for (int i = 0; i < burst; i++)
            {
                rig.Complete(0);
            }
        }

        Assert.Empty(q.InFlight);
        Assert.Equal(1 + Enumerable.Range(0, 50).Sum(r => 1 + (r % 7)), rig.Device.Completed);
        Assert.Equal(packed, rig.Daemon.Vrings[0].Queue is VhostUserBackend.Virtio.PackedQueue);
        Assert.Equal(eventIdx, rig.Daemon.Vrings[0].Queue.EventIdx);
    }

    [Fact]
    public void FourQueues_OnTwoWorkers_AllServed_ByTheirOwnThread()
    {
        var device = new CopyDevice(queues: 4, groups: [0b0011, 0b1100]);
        using var rig = new DaemonRig(device);
        rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);
        Assert.Equal(2, rig.Daemon.Workers.Count);
        Assert.Equal([0, 1], rig.Daemon.Workers[0].Vrings.Select(v => v.Index));
        Assert.Equal([2, 3], rig.Daemon.Workers[1].Vrings.Select(v => v.Index));
        for (int round = 0; round < 20; round++)
        {
            for (int q = 0; q < 4; q++)
            {
                rig.Submit(q, DaemonRig.Payload((round * 4) + q));
            }

            for (int q = 0; q < 4; q++)
            {
                rig.Complete(q);
            }
        }

        Assert.Equal([0, 0, 1, 1], device.ThreadOfQueue.Take(4));
        Assert.Equal(80, device.Completed);
    }

    [Fact]
    public void MemoryTableReplacement_WhileTrafficRuns_TrafficContinues()
    {
        using var rig = new DaemonRig(new CopyDevice(queues: 2, groups: [0b01, 0b10]));
        rig.Connect(eventIdx: true, packed: false);
        rig.Start(eventIdx: true, packed: false);
        using var stop = new CancellationTokenSource();
        int replacements = 0;
        int requests = 0;
        Exception? failure = null;
        var updater = new Thread(() =>
        {
            try
            {
                // The traffic below never touches the front-end (only guest RAM and eventfds),
                // so this thread owns it: the table is replaced while requests are in flight.
                while (!stop.IsCancellationRequested)
                {
                    rig.Frontend!.SetMemoryTable(rig.MemoryRegions());

                    Interlocked.Increment(ref replacements);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        updater.Start();
        try
        {
            for (; requests < 400 || Volatile.Read(ref replacements) < 50; requests++)
            {
                Assert.True(requests < 1_000_000, "the memory updater made no progress");
                rig.Submit(requests % 2, DaemonRig.Payload(requests));
                rig.Complete(requests % 2);
            }
        }
        finally
        {
            stop.Cancel();
            updater.Join();
        }

        Assert.Null(failure);
        Assert.True(replacements >= 50, $"only {replacements} replacements ran");
        Assert.True(rig.Device.MemoryUpdates >= replacements);
        Assert.Equal(requests, rig.Device.Completed);
    }

    [Fact]
    public void ThrowingHandleEvent_SignalsErrFd_AndOtherQueuesKeepWorking()
    {
        var device = new CopyDevice(queues: 2, groups: [0b11]) { ThrowOnQueue = 1 };
        var logs = new TestLogger();
        using var factory = logs;
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);

        rig.Submit(1, DaemonRig.Payload(7));
        Assert.True(UnixSocket.WaitReady(rig.Queues[1].Error, Interop.POLLIN, 5000), "the error eventfd did not fire");
        Assert.Contains(logs.Lines, e => e.Contains("device failed handling event 1", StringComparison.Ordinal) && e.Contains("device failure on queue 1", StringComparison.Ordinal));

        for (int i = 0; i < 10; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Complete(0);
        }

        // The daemon still answers the front-end.
        Assert.Equal(2, rig.Frontend!.GetQueueNum());
    }

    [Fact]
    public void Config_GoesToTheDevice()
    {
        using var rig = new DaemonRig(new CopyDevice());
        rig.Connect(eventIdx: false, packed: false);
        byte[] config = rig.Frontend!.GetConfig(4, 8, VhostUserConfigFlags.None);
        Assert.Equal(rig.Device.Config.AsSpan(4, 8).ToArray(), config);
        Assert.ThrowsAny<VhostUserException>(() => rig.Frontend.GetConfig(12, 8, VhostUserConfigFlags.None));
    }

    [Fact]
    public void Metrics_CountKicksCallsDescriptorsAndBytes_PerQueue()
    {
        var totals = new Dictionary<string, long>();
        using var listener = new MeterListener();
        var rig = new DaemonRig(new CopyDevice());
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == VhostUserDaemon.MeterName && ReferenceEquals(instrument.Meter, rig.Daemon.Metrics.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            Assert.Equal("queue", tags[0].Key);
            Assert.Equal(0, tags[0].Value);
            lock (totals)
            {
                totals[instrument.Name] = totals.GetValueOrDefault(instrument.Name) + value;
            }
        });
        listener.Start();
        using (rig)
        {
            rig.Connect(eventIdx: false, packed: false);
            rig.Start(eventIdx: false, packed: false);
            for (int i = 0; i < 10; i++)
            {
                rig.Submit(0, DaemonRig.Payload(i, 100));
                rig.Complete(0);
            }
        }

        Assert.Equal(10, totals["vhost_user.queue.descriptors"]);
        Assert.Equal(1000, totals["vhost_user.queue.bytes"]);
        Assert.InRange(totals["vhost_user.queue.kicks"], 1, 11);
        Assert.InRange(totals["vhost_user.queue.calls"], 1, 10);
    }

    [Fact]
    public void Metrics_ObserveTheConnectionState_BeforeAnythingIsCounted()
    {
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        using var rig = new DaemonRig(new CopyDevice());
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, rig.Daemon.Metrics.Meter) && instrument.Name.StartsWith("vhost_user.frontend.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => values[instrument.Name] = value);
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => values[instrument.Name] = value);
        listener.Start();

        listener.RecordObservableInstruments();
        Assert.Equal(0, values["vhost_user.frontend.connected"]);
        Assert.Equal(0, values["vhost_user.frontend.connections"]);

        rig.Connect(eventIdx: false, packed: false);
        listener.RecordObservableInstruments();
        Assert.Equal(1, values["vhost_user.frontend.connected"]);
        Assert.Equal(1, values["vhost_user.frontend.connections"]);
    }

    [Fact]
    public void WrongRingIndex_And_UnofferedFeatures_AreRejected()
    {
        using var rig = new DaemonRig(new CopyDevice(packed: false));
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        Assert.ThrowsAny<VhostUserException>(() => f.SetVringNum(5, 64));
        Assert.ThrowsAny<VhostUserException>(() => f.SetVringNum(0, 512));
        Assert.ThrowsAny<VhostUserException>(() => f.SetFeatures((ulong)VirtioFeatures.RingPacked));

        // Starting a ring without addresses fails, with the reason reported.
        using var kick = new EventFd();
        Assert.ThrowsAny<VhostUserException>(() => f.SetVringKick(0, kick));

        // The connection survives every reported failure.
        Assert.Equal(1, f.GetQueueNum());
    }
}
