using System.Buffers.Binary;
using Vhost;
using Vhost.User;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>A ring the guest breaks for good: one error, one error-fd signal, the ring stopped, a restart recovers it.</summary>
public sealed class DaemonBrokenRingTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    public void AvailIndexFarAhead_LogsOnce_SignalsTheErrorFdOnce_IgnoresKicks_AndARestartRecovers(int pollMs)
    {
        var device = new CopyDevice { PollingTime = TimeSpan.FromMilliseconds(pollMs) };
        var logs = new TestLogger();
        using var factory = logs;
        using var daemon = new VhostUserDaemon(device, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        RigQueue q = rig.Queues[0];
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        // The guest moves avail.idx 1000 entries ahead of a ring of 64, and keeps kicking.
        Span<byte> availIdx = rig.Ram.GetSpan(q.Driver.DriverAreaAddress + 2, 2);
        ushort real = BinaryPrimitives.ReadUInt16LittleEndian(availIdx);
        BinaryPrimitives.WriteUInt16LittleEndian(availIdx, (ushort)(real + 1000));
        for (int i = 0; i < 200; i++)
        {
            q.Kick.Signal();
            if (i % 20 == 0)
            {
                Thread.Sleep(10);
            }
        }

        logs.WaitFor("Error:");
        Thread.Sleep(300);
        string[] errors = [.. logs.Lines.Where(e => e.StartsWith("Error:", StringComparison.Ordinal) || e.StartsWith("Warning:", StringComparison.Ordinal))];
        Assert.True(errors.Length == 1, $"{errors.Length} errors/warnings logged, expected one:\n{string.Join("\n", errors.Take(5))}");
        Assert.Contains("AvailIndexOutOfRange", errors[0], StringComparison.Ordinal);
        Assert.True(q.Error.TryRead(out ulong signals), "the error eventfd was not signalled");
        Assert.Equal(1UL, signals);

        // The front-end restarts the ring (GET_VRING_BASE, SET_VRING_BASE, SET_VRING_KICK): it works again.
        uint position = f.GetVringBase(0);
        Assert.Equal(real, (ushort)position);
        BinaryPrimitives.WriteUInt16LittleEndian(availIdx, real);
        rig.StartQueue(0, packed: false, baseValue: position);
        f.SetVringEnable(0, true);
        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(10 + i));
            rig.Complete(0);
        }

        Assert.False(q.Error.TryRead(out _), "the error eventfd was signalled again");
    }

    [Fact]
    public void DescriptorLoop_ReachingTheWorker_BreaksTheRingOnce_AndResetDeviceRecovers()
    {
        var device = new CopyDevice { PollingTime = TimeSpan.FromMilliseconds(20) };
        var logs = new TestLogger();
        using var factory = logs;
        // The chain the device failed on is never completed: RESET_DEVICE waits for it only briefly.
        using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { InFlightTimeout = TimeSpan.FromMilliseconds(100) }, factory);
        string path = DaemonRig.NewSocketPath();
        daemon.Start(path);
        using var rig = new DaemonRig(device, daemon, path);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        RigQueue q = rig.Queues[0];

        // A chain whose second descriptor points to itself: the device's enumeration throws. It
        // is made bad before it is published: the worker polls for 20 ms after the ring starts
        // and would otherwise take (and complete) the good chain before it is broken.
        ushort head = q.Driver.Add([new VirtqBuffer(q.BufferBase, 64, false), new VirtqBuffer(q.BufferBase + RigQueue.SlotBytes, RigQueue.SlotBytes, true)]);
        Span<byte> desc = rig.Ram.GetSpan(q.Driver.DescriptorAddress, 64 * 16);
        Span<byte> first = desc.Slice(head * 16, 16);
        ushort second = BinaryPrimitives.ReadUInt16LittleEndian(first[14..]);
        Span<byte> next = desc.Slice(second * 16, 16);
        BinaryPrimitives.WriteUInt16LittleEndian(next[12..], (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(next[12..]) | 1)); // NEXT
        BinaryPrimitives.WriteUInt16LittleEndian(next[14..], second);
        q.Driver.Publish();
        for (int i = 0; i < 100; i++)
        {
            q.Kick.Signal();
        }

        logs.WaitFor("Error:");
        Thread.Sleep(200);
        string[] errors = [.. logs.Lines.Where(e => e.StartsWith("Error:", StringComparison.Ordinal))];
        Assert.True(errors.Length == 1, $"{errors.Length} errors logged, expected one:\n{string.Join("\n", errors.Take(5))}");
        Assert.Contains("DescriptorLoop", errors[0], StringComparison.Ordinal);
        Assert.True(q.Error.TryRead(out ulong signals));
        Assert.Equal(1UL, signals);

        // The ring is stopped: a good request after the broken one is not processed.
        rig.Submit(0, DaemonRig.Payload(3));
        Thread.Sleep(200);
        Assert.False(q.Driver.TryGetUsed(out ushort used, out _), $"the broken ring still processed chain {used}");

        // RESET_DEVICE, then the front-end sets the device up again with fresh rings.
        f.ResetDevice();
        f.SetFeatures(rig.AckedFeatures);
        foreach (RigQueue old in rig.Queues)
        {
            old.Dispose();
        }

        rig.Queues.Clear();
        rig.Start(eventIdx: false, packed: false);
        for (int i = 0; i < 5; i++)
        {
            rig.Submit(0, DaemonRig.Payload(20 + i));
            rig.Complete(0);
        }
    }
}
