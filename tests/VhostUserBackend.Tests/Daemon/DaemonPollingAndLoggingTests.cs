using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

public sealed class DaemonPollingAndLoggingTests
{
    [Fact]
    public void PollingWorker_ProcessesBuffersPublishedWithoutAKick()
    {
        var device = new CopyDevice { PollingTime = TimeSpan.FromMilliseconds(500) };
        using var rig = new DaemonRig(device);
        rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        rig.Submit(0, DaemonRig.Payload(1));
        rig.Complete(0);

        // Inside the polling window the worker spins on the ring: no kick is needed.
        for (int i = 0; i < 20; i++)
        {
            rig.Submit(0, DaemonRig.Payload(10 + i), kick: false);
            rig.Complete(0);
        }

        Assert.Equal(21, device.Completed);

        // After the window, notifications are back on: the driver is asked to kick again.
        long start = Environment.TickCount64;
        while (rig.Daemon.Vrings[0].IsPolling && Environment.TickCount64 - start < 5000)
        {
            Thread.Sleep(10);
        }

        Assert.True(Environment.TickCount64 - start < 2000, $"polling lasted {Environment.TickCount64 - start} ms after the last buffer");
        rig.Submit(0, DaemonRig.Payload(99));
        rig.Complete(0);
    }

    [Fact]
    public void LogAll_MarksTheWrittenBufferAndTheUsedRingDirty()
    {
        var device = new CopyDevice();
        using var rig = new DaemonRig(device);
        VhostUserFrontend f = rig.Connect(eventIdx: false, packed: false);
        rig.Start(eventIdx: false, packed: false);
        Assert.NotEqual(0UL, f.GetFeatures() & (ulong)VhostUserVirtioFeatures.LogAll);

        const int logBytes = 4096;
        using SafeFileHandle log = Fd.CreateMemFd("dirty-log", logBytes);
        f.SetLogBase(0, new VhostDirtyLogRegion(logBytes, 0, log));
        f.SetFeatures(rig.AckedFeatures | (ulong)VhostUserVirtioFeatures.LogAll);

        // SET_FEATURES has no reply; the kick below goes to the worker over an eventfd and could
        // overtake it. A request with a reply (handled in order on the same socket) is the barrier.
        f.GetFeatures();

        RigQueue q = rig.Queues[0];
        rig.Submit(0, DaemonRig.Payload(5));
        rig.Complete(0);

        var bitmap = new byte[logBytes];
        Fd.PRead(log, bitmap, 0);
        ulong output = q.BufferBase + RigQueue.SlotBytes;
        Assert.True(IsDirty(bitmap, output), "the written buffer's page is not logged");
        Assert.True(IsDirty(bitmap, q.Driver.DeviceAreaAddress), "the used ring's page is not logged");
        Assert.False(IsDirty(bitmap, q.BufferBase + (1 << 20)), "an untouched page is logged");

        // Logging off: new writes are not logged any more.
        Array.Clear(bitmap);
        Fd.PWrite(log, bitmap, 0);
        f.SetFeatures(rig.AckedFeatures);
        f.GetFeatures();
        rig.Submit(0, DaemonRig.Payload(6));
        rig.Complete(0);
        Fd.PRead(log, bitmap, 0);
        Assert.DoesNotContain(bitmap, b => b != 0);
    }

    private static bool IsDirty(byte[] bitmap, ulong gpa)
    {
        ulong page = gpa / VhostUserLimits.LogPageSize;
        return (bitmap[page / 8] & (1 << (int)(page % 8))) != 0;
    }
}
