using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.Fuzz;

/// <summary>
/// `inflight`: bytes become the contents of an inflight region handed over by SET_INFLIGHT_FD,
/// then the daemon's path runs: <see cref="InflightRegion.Map"/> (size checks), and per queue
/// <see cref="InflightTracker.Recover"/> against a split ring whose used index comes from the
/// input; for queue 0 the ring is then served as the daemon does after a reconnect: resubmitted
/// heads first, then new chains, each completed through the tracker.
/// </summary>
/// <remarks>
/// Input: byte 0: queue count (b % 4 + 1); bytes 1-2: the region's queue size (v % 1024 + 1);
/// byte 3: the ring's size, 2^(b % 11) (it may exceed the region's, which must be refused);
/// bytes 4-5: used.idx in the ring; byte 6: the description's shape (0: exact; 1: one byte
/// short; 2: larger than the file; 3: offset 4096 into a file one page larger); byte 7 unused;
/// then the region's bytes (up to its size), then guest RAM as in the chain targets.
/// Allowed: <see cref="VhostException"/> (the region is refused), <see cref="VirtqueueException"/>,
/// <see cref="GuestMemoryException"/>.
/// </remarks>
internal static class InflightTarget
{
    private const int HeaderLength = 8;

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
        ushort regionQueueSize = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(input[1..]) % 1024) + 1);
        ushort ringSize = (ushort)(1 << (input[3] % 11));
        ushort usedIndex = BinaryPrimitives.ReadUInt16LittleEndian(input[4..]);
        int shape = input[6] % 4;
        ReadOnlySpan<byte> rest = input[HeaderLength..];

        using InflightRegion region = MapRegion(ref rest, queueCount, regionQueueSize, shape, packed: false);

        using GuestRam ram = GuestRam.Create([(0, ChainTargets.RegionA), (ChainTargets.RegionBAddress, ChainTargets.RegionB)]);
        ram.Write(0, rest[..(int)Math.Min((ulong)rest.Length, ChainTargets.RegionA)]);

        // The daemon attaches a tracker only when the ring fits the region (ReplaceInflight);
        // Recover must refuse a larger ring by itself all the same.
        var trackers = new InflightTracker[queueCount];
        var inflight = new ushort[queueCount];
        for (int q = 0; q < queueCount; q++)
        {
            trackers[q] = new InflightTracker(region, q);
            inflight[q] = trackers[q].Recover(ringSize, usedIndex);
        }

        using GuestMemory memory = ram.CreateGuestMemory();
        using var queue = new SplitQueue(1024) { Size = ringSize };
        queue.DescriptorTableAddress = 0;
        queue.DriverAreaAddress = (ulong)ringSize * 16;
        queue.DeviceAreaAddress = ChainTargets.DeviceArea;
        ram.Write(ChainTargets.DeviceArea + 2, BitConverter.GetBytes(usedIndex));
        queue.NextAvail = (ushort)(usedIndex + inflight[0]);
        queue.NextUsed = usedIndex;
        queue.Activate(memory);

        InflightTracker tracker = trackers[0];
        int served = 0;
        while (tracker.TryTakeResubmission(out ushort head))
        {
            if (++served > ringSize)
            {
                throw new FuzzContractException($"more than {ringSize} resubmissions for a ring of {ringSize}");
            }

            DescriptorChain chain = queue.ResubmittedChain(head);
            Complete(queue, tracker, chain, memory);
        }

        for (int popped = 0; queue.TryPopDescriptorChain(out DescriptorChain chain); popped++)
        {
            if (popped > 2 * ringSize)
            {
                throw new FuzzContractException($"popped more than {2 * ringSize} chains from a ring of {ringSize}");
            }

            tracker.MarkInflight(chain.Head);
            Complete(queue, tracker, chain, memory);
        }
    }

    /// <summary>
    /// The region as SET_INFLIGHT_FD hands it over: a memfd holding the first bytes of
    /// <paramref name="rest"/> (consumed), described by <paramref name="shape"/> (0: exact; 1: one
    /// byte short; 2: larger than the file; 3: offset 4096 into a file one page larger), mapped as
    /// the daemon maps it (the fd is closed: the mapping stays).
    /// </summary>
    internal static InflightRegion MapRegion(ref ReadOnlySpan<byte> rest, ushort queueCount, ushort queueSize, int shape, bool packed)
    {
        ulong size = InflightRegion.RegionSize(queueCount, queueSize, packed);
        ulong offset = shape == 3 ? 4096UL : 0;
        var description = new VhostUserInflight
        {
            MmapSize = shape switch { 1 => size - 1, 2 => size + 4096, _ => size },
            MmapOffset = offset,
            QueueCount = queueCount,
            QueueSize = queueSize,
        };

        using SafeFileHandle fd = Fd.CreateMemFd("fuzz-inflight", (long)(size + offset));
        int regionBytes = (int)Math.Min((ulong)rest.Length, size);
        if (regionBytes > 0)
        {
            Fd.PWrite(fd, rest[..regionBytes], (long)offset);
        }

        rest = rest[regionBytes..];
        return InflightRegion.Map(fd, description, packed);
    }

    /// <summary>Touches every buffer of <paramref name="chain"/> as a device does (reads the readable ones, writes the writable ones); returns the bytes written.</summary>
    internal static uint Touch(DescriptorChain chain, GuestMemory memory)
    {
        uint written = 0;
        Span<byte> touch = stackalloc byte[16];
        foreach (VirtqBuffer buffer in chain)
        {
            int n = (int)Math.Min(buffer.Length, 16u);
            if (buffer.IsWriteOnly)
            {
                memory.Write(buffer.Address, touch[..n]);
                written += buffer.Length;
            }
            else
            {
                memory.Read(buffer.Address, touch[..n]);
            }
        }

        return written;
    }

    private static void Complete(SplitQueue queue, InflightTracker tracker, DescriptorChain chain, GuestMemory memory)
    {
        uint written = Touch(chain, memory);
        tracker.BeginUsed(chain.Head);
        queue.AddUsed(chain.Head, written);
        tracker.EndUsed(chain.Head, queue.NextUsed);
    }
}
