using System.Collections.Concurrent;
using Vhost;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>
/// Device-initiated work: a device-to-driver queue fed by producer threads through
/// <see cref="Vring.RequestProcessing"/>, with the documented loop, which neither spins on a queue
/// the driver keeps full nor misses an event.
/// </summary>
public sealed class DaemonEventQueueTests
{
    private const int EventBytes = 16;

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void EventsFromOtherThreads_ReachTheDriver_InOrder_AndAFullIdleQueueCostsNothing(bool eventIdx, bool packed)
    {
        var events = new ConcurrentQueue<byte[]>();
        using var rig = new DaemonRig(new CopyDevice { Events = events });
        rig.Connect(eventIdx, packed);
        rig.Start(eventIdx, packed, size: 16);
        RigQueue rq = rig.Queues[0];

        // The driver fills the queue with buffers, as an input or console driver does.
        var slotOf = new Dictionary<ushort, ulong>();
        for (int i = 0; i < 16; i++)
        {
            Post(rig, rq, slotOf, rq.BufferBase + ((ulong)i * EventBytes));
        }

        // Nothing to say: the device must not loop over the full queue.
        Thread.Sleep(300);
        Assert.True(Interlocked.Read(ref rig.Device.EventLoopIterations) == 0, $"{rig.Device.EventLoopIterations} loop iterations with no event");

        // Four producer threads, 50 events each, each followed by RequestProcessing; the driver
        // takes events as they come and posts each buffer again.
        Vring ring = rig.Daemon.Vrings[0];
        const int PerProducer = 50;
        var sent = new ConcurrentDictionary<int, int>();
        Thread[] producers = Enumerable.Range(0, 4).Select(p => new Thread(() =>
        {
            for (int n = 0; n < PerProducer; n++)
            {
                lock (events)
                {
                    // One lock orders each producer's events; the device sees one global order.
                    events.Enqueue(Event(p, n));
                }

                ring.RequestProcessing();
                if (n % 7 == 0)
                {
                    Thread.Sleep(1);
                }
            }
        })).ToArray();
        foreach (Thread t in producers)
        {
            t.Start();
        }

        var next = new int[4];
        long deadline = Environment.TickCount64 + 10_000;
        int received = 0;
        while (received < 4 * PerProducer)
        {
            Assert.True(Environment.TickCount64 < deadline, $"only {received} of {4 * PerProducer} events arrived");
            if (!rq.Driver.TryGetUsed(out ushort id, out uint length))
            {
                if (!rq.Driver.EnableInterrupts() && UnixSocket.WaitReady(rq.Call, Interop.POLLIN, 100))
                {
                    rq.Call.TryRead(out _);
                }

                continue;
            }

            Assert.Equal((uint)EventBytes, length);
            ulong address = slotOf[id];
            slotOf.Remove(id);
            byte[] e = rig.Ram.GetSpan(address, EventBytes).ToArray();
            int producer = e[0];
            Assert.Equal(Event(producer, next[producer]), e); // each producer's events in its order, none lost or repeated
            next[producer]++;
            received++;
            Post(rig, rq, slotOf, address);
        }

        foreach (Thread t in producers)
        {
            t.Join();
        }

        Assert.Equal([PerProducer, PerProducer, PerProducer, PerProducer], next);

        // Idle again with a full queue: the loop stops.
        long iterations = Interlocked.Read(ref rig.Device.EventLoopIterations);
        Thread.Sleep(300);
        Assert.Equal(iterations, Interlocked.Read(ref rig.Device.EventLoopIterations));
        Assert.False(rq.Driver.TryGetUsed(out _, out _));
    }

    private static void Post(DaemonRig rig, RigQueue rq, Dictionary<ushort, ulong> slotOf, ulong address)
    {
        rig.Ram.GetSpan(address, EventBytes).Clear();
        ushort id = rq.Driver.Add([new VirtqBuffer(address, EventBytes, true)]);
        slotOf[id] = address;
        rq.Driver.Publish();
        if (rq.Driver.NeedsKick())
        {
            rq.Kick.Signal();
        }
    }

    private static byte[] Event(int producer, int n)
    {
        var e = new byte[EventBytes];
        e[0] = (byte)producer;
        BitConverter.TryWriteBytes(e.AsSpan(1), n);
        e[15] = 0xEE;
        return e;
    }
}
