using System.Buffers.Binary;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.Fuzz;

/// <summary>
/// `packed-inflight`: bytes become the contents of an inflight region in the packed layout handed
/// over by SET_INFLIGHT_FD and the guest RAM holding a packed ring, then the daemon's path runs:
/// <see cref="InflightRegion.Map"/> (size checks), and per queue
/// <see cref="PackedInflightTracker.Recover"/> (which reads the ring slot at <c>old_used_idx</c> and
/// sets the ring's position); for queue 0 the ring is then served as the daemon does after a
/// reconnect: resubmitted chains first (adopted into the queue from the region's copies), then new
/// chains popped and marked, every chain walked and completed through the tracker.
/// </summary>
/// <remarks>
/// Input: byte 0: queue count (b % 4 + 1); bytes 1-2: the region's queue size (v % 512 + 1); bytes
/// 3-4: the ring's size (v % 512 + 1; it may exceed the region's, which must be refused); bytes
/// 5-8: the SET_VRING_BASE value (positions reduced below the ring size; used for a region not set
/// up yet); byte 9: the description's shape (0: exact; 1: one byte short; 2: larger than the file;
/// 3: offset 4096 into a file one page larger); bytes 10-11 unused; then the region's bytes (up to
/// its size), then guest RAM as in the chain targets (the descriptor ring at 0).
/// Allowed: <see cref="VhostException"/> (the region is refused), <see cref="VirtqueueException"/>,
/// <see cref="GuestMemoryException"/>.
/// </remarks>
internal static class PackedInflightTarget
{
    private const int HeaderLength = 12;

    public static void Run(ReadOnlySpan<byte> input)
    {
        // Zero-padded, not skipped: every run must reach instrumented code (see ChainTargets).
        if (input.Length < HeaderLength)
        {
            byte[] padded = new byte[HeaderLength];
            input.CopyTo(padded);
            input = padded;
        }

        ushort queueCount = (ushort)((input[0] % 4) + 1);
        ushort regionQueueSize = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(input[1..]) % 512) + 1);
        ushort ringSize = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(input[3..]) % 512) + 1);
        uint vringBase = BinaryPrimitives.ReadUInt32LittleEndian(input[5..]);
        vringBase = (vringBase & 0x8000_8000) | ((vringBase & 0x7fff) % ringSize) | ((((vringBase >> 16) & 0x7fff) % ringSize) << 16);
        int shape = input[9] % 4;
        ReadOnlySpan<byte> rest = input[HeaderLength..];

        using InflightRegion region = InflightTarget.MapRegion(ref rest, queueCount, regionQueueSize, shape, packed: true);

        using GuestRam ram = GuestRam.Create([(0, ChainTargets.RegionA), (ChainTargets.RegionBAddress, ChainTargets.RegionB)]);
        int first = (int)Math.Min((ulong)rest.Length, ChainTargets.RegionA);
        ram.Write(0, rest[..first]);
        rest = rest[first..];
        ram.Write(ChainTargets.RegionBAddress, rest[..(int)Math.Min((ulong)rest.Length, ChainTargets.RegionB)]);
        using GuestMemory memory = ram.CreateGuestMemory();

        // Every queue's region is recovered against its own ring (the same ring memory here).
        var queues = new PackedQueue[queueCount];
        var trackers = new PackedInflightTracker[queueCount];
        try
        {
            for (int q = 0; q < queueCount; q++)
            {
                queues[q] = new PackedQueue(512) { Size = ringSize, DescriptorTableAddress = 0, DriverAreaAddress = (ulong)ringSize * 16, DeviceAreaAddress = ChainTargets.DeviceArea, IndirectDescriptors = true };
                queues[q].SetVringBase(vringBase);
                trackers[q] = new PackedInflightTracker(region, q);
                int inflight = trackers[q].Recover(queues[q], memory);
                if (inflight > ringSize)
                {
                    throw new FuzzContractException($"{inflight} chains in flight in a ring of {ringSize}");
                }
            }

            PackedQueue queue = queues[0];
            PackedInflightTracker tracker = trackers[0];
            queue.Activate(memory);
            int served = 0;
            while (tracker.TryTakeResubmission(queue, out DescriptorChain chain))
            {
                if (++served > ringSize)
                {
                    throw new FuzzContractException($"more than {ringSize} resubmissions for a ring of {ringSize}");
                }

                Complete(queue, tracker, chain, memory);
            }

            for (int popped = 0; queue.TryPopDescriptorChain(out DescriptorChain chain); popped++)
            {
                if (popped > 2 * ringSize)
                {
                    throw new FuzzContractException($"popped more than {2 * ringSize} chains from a ring of {ringSize}");
                }

                tracker.MarkInflight(queue, chain);
                Complete(queue, tracker, chain, memory);
            }
        }
        finally
        {
            foreach (PackedQueue? q in queues)
            {
                q?.Dispose();
            }
        }
    }

    private static void Complete(PackedQueue queue, PackedInflightTracker tracker, DescriptorChain chain, GuestMemory memory)
    {
        uint written;
        try
        {
            written = InflightTarget.Touch(chain, memory);
        }
        catch (VirtqueueException)
        {
            // A bad chain is still completed (with 0 bytes), as a device does: the region's update sequence runs on.
            written = 0;
        }

        tracker.AddUsed(queue, chain.Head, written);
    }
}
