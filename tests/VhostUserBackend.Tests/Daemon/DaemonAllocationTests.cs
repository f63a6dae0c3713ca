namespace VhostUserBackend.Tests.Daemon;

/// <summary>The daemon's steady-state data path (epoll, kick, pop, copy, add used, call) allocates nothing per request.</summary>
public sealed class DaemonAllocationTests
{
    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void TenThousandRequests_WorkerThreadAllocatesNothing(bool packed, bool eventIdx)
    {
        const int Requests = 10_000;
        using var rig = new DaemonRig(new CopyDevice());
        rig.Connect(eventIdx, packed);
        rig.Start(eventIdx, packed);
        byte[] payload = DaemonRig.Payload(1, 200);
        for (int i = 0; i < 1000; i++)
        {
            rig.Submit(0, payload);
            rig.Complete(0);
        }

        long before = Volatile.Read(ref rig.Device.WorkerAllocatedBytes[0]);
        long completedBefore = rig.Device.Completed;
        for (int i = 0; i < Requests; i++)
        {
            rig.Submit(0, payload);
            rig.Complete(0);
        }

        // One more event so the last measurement covers the whole run.
        rig.Submit(0, payload);
        rig.Complete(0);
        long allocated = Volatile.Read(ref rig.Device.WorkerAllocatedBytes[0]) - before;
        Assert.Equal(completedBefore + Requests + 1, rig.Device.Completed);

        // One allocation per request would be at least 24 bytes x 10 000; allow a small constant
        // for one-time runtime work (tiered JIT re-compilation) on the worker thread.
        Assert.True(allocated <= 1024, $"the worker thread allocated {allocated} bytes over {Requests} requests");
    }
}
