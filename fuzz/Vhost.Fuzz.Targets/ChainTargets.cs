using System.Buffers.Binary;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.Fuzz;

/// <summary>
/// `split-chain` and `packed-chain`: bytes become guest RAM holding a ring, then every available
/// chain is popped, walked (each buffer read, write-only ones written), and returned as used.
/// </summary>
/// <remarks>
/// Guest memory: region A at GPA 0 (64 KiB) and region B at GPA 0x20000 (16 KiB), with a hole
/// between, so buffers can lie outside memory or straddle a region's end. Input: byte 0 picks
/// the queue size (split: 2^(b % 9), 1 to 256; packed: b + 1), byte 1 has flags (bit 0 EVENT_IDX,
/// bit 1 INDIRECT_DESC), bytes 2-5 the vring base (SET_VRING_BASE); a shorter input is zero-padded; the rest fills region A from
/// GPA 0 and then region B. Rings: descriptor table at 0, driver area right after it, device area
/// at 0x8000. Allowed: <see cref="VirtqueueException"/> and <see cref="GuestMemoryException"/>.
/// </remarks>
internal static class ChainTargets
{
    internal const ulong RegionA = 0x10000;
    internal const ulong RegionBAddress = 0x20000;
    internal const ulong RegionB = 0x4000;
    internal const ulong DeviceArea = 0x8000;
    private const int HeaderLength = 6;
    private const int TouchLength = 64;

    public static void RunSplit(ReadOnlySpan<byte> input) => Run(input, packed: false);

    public static void RunPacked(ReadOnlySpan<byte> input) => Run(input, packed: true);

    private static void Run(ReadOnlySpan<byte> input, bool packed)
    {
        // A short input is zero-padded rather than skipped: every run must reach instrumented
        // code (SharpFuzz may read the first input before afl-fuzz has written it, and a run
        // with no coverage at all makes afl-fuzz abort with "No instrumentation detected").
        if (input.Length < HeaderLength)
        {
            byte[] padded = new byte[HeaderLength];
            input.CopyTo(padded);
            input = padded;
        }

        ushort size = packed ? (ushort)(input[0] + 1) : (ushort)(1 << (input[0] % 9));
        bool eventIdx = (input[1] & 1) != 0;
        bool indirect = (input[1] & 2) != 0;
        uint vringBase = BinaryPrimitives.ReadUInt32LittleEndian(input[2..]);
        if (packed)
        {
            // SET_VRING_BASE positions must be below the size (the daemon checks this on the message).
            vringBase = (vringBase & 0x8000_8000) | ((vringBase & 0x7fff) % size) | ((((vringBase >> 16) & 0x7fff) % size) << 16);
        }

        using GuestRam ram = GuestRam.Create([(0, RegionA), (RegionBAddress, RegionB)]);
        ReadOnlySpan<byte> contents = input[HeaderLength..];
        int first = (int)Math.Min((ulong)contents.Length, RegionA);
        ram.Write(0, contents[..first]);
        contents = contents[first..];
        ram.Write(RegionBAddress, contents[..(int)Math.Min((ulong)contents.Length, RegionB)]);

        using GuestMemory memory = ram.CreateGuestMemory();
        using Virtqueue queue = packed ? new PackedQueue(256) : new SplitQueue(256);
        queue.Size = size;
        queue.DescriptorTableAddress = 0;
        queue.DriverAreaAddress = (ulong)size * 16;
        queue.DeviceAreaAddress = DeviceArea;
        queue.EventIdx = eventIdx;
        queue.IndirectDescriptors = indirect;
        queue.SetVringBase(vringBase);
        queue.Activate(memory);
        Walk(queue, memory, maxChains: (2 * size) + 2);
    }

    /// <summary>Pops and walks chains until the ring is empty; more than <paramref name="maxChains"/> is a contract violation.</summary>
    internal static void Walk(Virtqueue queue, GuestMemory memory, int maxChains)
    {
        Span<byte> touch = stackalloc byte[TouchLength];
        for (int popped = 0; queue.TryPopDescriptorChain(out DescriptorChain chain); popped++)
        {
            if (popped >= maxChains)
            {
                throw new FuzzContractException($"popped more than {maxChains} chains from a queue of {queue.Size}");
            }

            // The one-descriptor fast path must agree with enumeration: the same buffer, false for
            // any other chain, or the same refusal.
            VirtqueueError? singleRefusal = null;
            bool single = false;
            VirtqBuffer only = default;
            try
            {
                single = chain.TryGetSingleBuffer(out only);
            }
            catch (VirtqueueException e)
            {
                singleRefusal = e.Reason;
            }

            uint written = 0;
            int buffers = 0;
            VirtqBuffer first = default;
            DescriptorChainEnumerator walk = chain.GetEnumerator();
            while (true)
            {
                try
                {
                    if (!walk.MoveNext())
                    {
                        break;
                    }
                }
                catch (VirtqueueException e) when (buffers == 0 && singleRefusal is not null && e.Reason != singleRefusal)
                {
                    throw new FuzzContractException($"TryGetSingleBuffer refused with {singleRefusal}, enumeration with {e.Reason}");
                }

                VirtqBuffer buffer = walk.Current;
                if (++buffers > 65536)
                {
                    throw new FuzzContractException("a chain yielded more than 65536 buffers");
                }

                if (buffers == 1)
                {
                    first = buffer;
                }

                // Touch both ends of the buffer, as a device would.
                int n = (int)Math.Min(buffer.Length, TouchLength);
                Span<byte> head = touch[..n];
                ulong last = buffer.Address + buffer.Length - (ulong)n;
                if (buffer.IsWriteOnly)
                {
                    head.Fill(0x5a);
                    memory.Write(buffer.Address, head);
                    memory.Write(last, head);
                    written += buffer.Length;
                }
                else
                {
                    memory.Read(buffer.Address, head);
                    memory.Read(last, head);
                }
            }

            if (singleRefusal is not null)
            {
                throw new FuzzContractException($"TryGetSingleBuffer refused a chain ({singleRefusal}) that enumeration accepted");
            }

            if (single && (buffers != 1 || first != only))
            {
                throw new FuzzContractException($"TryGetSingleBuffer gave {only}, enumeration {buffers} buffer(s) starting with {first}");
            }

            queue.AddUsed(chain.Head, written);
            queue.NeedsNotification();
        }
    }
}
