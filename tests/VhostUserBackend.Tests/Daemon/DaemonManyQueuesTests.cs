using Vhost.User;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>More than 64 queues: IVhostUserBackend.QueuesPerWorker.</summary>
public sealed class DaemonManyQueuesTests
{
    [Fact]
    public void HundredTwentyEightQueues_OnTwoWorkers_AllServed_ByTheirOwnThread()
    {
        const int Queues = 128;
        int[] even = [.. Enumerable.Range(0, Queues).Where(q => q % 2 == 0)];
        int[] odd = [.. Enumerable.Range(0, Queues).Where(q => q % 2 == 1).Reverse()];
        var device = new CopyDevice(queues: Queues, indexGroups: [even, odd]);
        using var rig = new DaemonRig(device, ramSize: 8 << 20);
        VhostUserFrontend f = rig.Connect(eventIdx: true, packed: false);
        Assert.Equal(Queues, f.GetQueueNum());
        rig.Start(eventIdx: true, packed: false, size: 16);
        Assert.Equal(2, rig.Daemon.Workers.Count);
        Assert.Equal(even, rig.Daemon.Workers[0].Vrings.Select(v => v.Index));
        Assert.Equal(odd.Order(), rig.Daemon.Workers[1].Vrings.Select(v => v.Index));
        for (int round = 0; round < 3; round++)
        {
            for (int q = 0; q < Queues; q++)
            {
                rig.Submit(q, DaemonRig.Payload((round * Queues) + q));
            }

            for (int q = 0; q < Queues; q++)
            {
                rig.Complete(q);
            }
        }

        Assert.Equal(3 * Queues, device.Completed);
        Assert.Equal(Enumerable.Range(0, Queues).Select(q => q % 2), device.ThreadOfQueue);
    }

    [Fact]
    public void Default_AboveSixtyFourQueues_IsOneWorkerServingAll()
    {
        using var daemon = new VhostUserDaemon(new CopyDevice(queues: 100));
        Assert.Single(daemon.Workers);
        Assert.Equal(Enumerable.Range(0, 100), daemon.Workers[0].Vrings.Select(v => v.Index));
    }

    [Fact]
    public void InvalidIndexGroups_AreRejected_WithTheReason()
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 70, indexGroups: [[.. Enumerable.Range(0, 69)]])));
        Assert.Contains("queue 69 has no worker", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 70, indexGroups: [[.. Enumerable.Range(0, 70)], [3]])));
        Assert.Contains("queue 3 is named by more than one worker", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 70, indexGroups: [[.. Enumerable.Range(0, 70)], [70]])));
        Assert.Contains("names queue 70, which the device does not have", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 70, indexGroups: [[.. Enumerable.Range(0, 70)], []])));
        Assert.Contains("worker 1 serves no queue", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => new VhostUserDaemon(new CopyDevice(queues: 70, indexGroups: [])));
        Assert.Contains("must name at least one worker", e.Message, StringComparison.Ordinal);
    }
}
