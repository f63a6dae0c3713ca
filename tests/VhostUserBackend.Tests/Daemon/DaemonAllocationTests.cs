namespace VhostUserBackend.Tests.Daemon;

/// <summary>The daemon's steady-state data path (epoll, kick, pop, copy, add used, call) allocates nothing per request.</summary>
public sealed class DaemonAllocationTests
{
    [Theory]
    [InlineData(false, true, false)]
    [InlineData(false, false, false)]
    [InlineData(true, true, false)]
    [InlineData(false, true, true)]
    [InlineData(true, true, true)]
    public void TenThousandRequests_WorkerThreadAllocatesNothing(bool packed, bool eventIdx, bool inflight)
    {
        const int Requests = 10_000;
        using var rig = new DaemonRig(new CopyDevice());
        Vhost.User.VhostUserFrontend f = rig.Connect(eventIdx, packed);
        Microsoft.Win32.SafeHandles.SafeFileHandle? region = null;
        Vhost.User.Messages.VhostUserInflight description = default;
        if (inflight)
        {
            region = f.GetInflightFd(1, 64, out description);
        }

        using var regionScope = region;
        rig.Start(eventIdx, packed, inflight: region is null ? null : (description, region));
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
