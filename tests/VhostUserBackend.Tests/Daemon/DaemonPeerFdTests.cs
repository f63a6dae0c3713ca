using Vhost;
using Vhost.User;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// No fd a front-end hands the daemon may block one of its threads: kick eventfds are never
/// read (edge-triggered), and a blocking call eventfd whose counter is full is not written.
/// </summary>
public sealed class DaemonPeerFdTests
{
    [Fact]
    public async Task OneBlockingEventfd_AsTheKickOfTwoRings_DoesNotWedgeTheWorker()
    {
        var device = new CopyDevice(queues: 2);
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        Assert.False(rig.Queues[0].Kick.IsNonBlocking);

        // Ring 1's kick is the same (blocking) eventfd as ring 0's: two fds, one file description.
        f.SetVringKick(1, rig.Queues[0].Kick);
        for (int i = 0; i < 20; i++)
        {
            rig.Submit(0, DaemonRig.Payload(i));
            rig.Submit(1, DaemonRig.Payload(100 + i), kick: false);
            rig.Queues[0].Kick.Signal();
            rig.Complete(0);
            rig.Complete(1);
        }

        // The control thread pauses the worker for GET_VRING_BASE: a worker blocked in read would hang it.
        Task<uint> stop = Task.Run(() => f.GetVringBase(1), TestContext.Current.CancellationToken);
        Assert.True(await Finishes(stop), "GET_VRING_BASE hung: the worker is blocked on the kick fd");
    }

    [Fact]
    public async Task ABlockingCallEventfd_WithAFullCounter_DoesNotWedgeTheWorker()
    {
        var device = new CopyDevice(queues: 1);
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        using var full = new EventFd();
        full.Signal(0xffff_ffff_ffff_fffe);
        f.SetVringCall(0, full);
        rig.Submit(0, DaemonRig.Payload(1));
        long deadline = Environment.TickCount64 + 5000;
        while (Interlocked.Read(ref device.Completed) == 0)
        {
            Assert.True(Environment.TickCount64 < deadline, "the request was not processed");
            Thread.Sleep(1);
        }

        Task<uint> stop = Task.Run(() => f.GetVringBase(0), TestContext.Current.CancellationToken);
        Assert.True(await Finishes(stop), "GET_VRING_BASE hung: the worker is blocked writing the call fd");
        Assert.Equal(1u, await stop);
    }

    private static async Task<bool> Finishes(Task task)
    {
        Task first = await Task.WhenAny(task, Task.Delay(5000, TestContext.Current.CancellationToken));
        return first == task;
    }
}
