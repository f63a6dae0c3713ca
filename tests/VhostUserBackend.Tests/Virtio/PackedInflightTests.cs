using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>
/// Packed-ring inflight tracking (the spec's <c>QueueRegionPacked</c>): what a ring writes to the
/// region at pop, put-back and completion, and what a new back-end recovers from it after the old
/// one died at each step of those updates. Every scenario completes out of order (a later chain's
/// used element overwrites the ring slots of an earlier chain still in flight) and ends with the
/// driver having seen every buffer id used exactly once.
/// </summary>
public sealed class PackedInflightTests
{
    private const int Header = 32;
    private const int Entry = 32;

    /// <summary>The state after: A (2 descriptors), B (3), C (1, indirect) popped; B completed first (its used element over A's first slot).</summary>
    private static (ushort A, ushort B, ushort C) PopThreeCompleteMiddle(VringRig rig, List<ushort> seen, Dictionary<ushort, List<VirtqBuffer>> buffers)
    {
        ushort a = rig.Add(1, buffers: 2);
        ushort b = rig.Add(2, buffers: 3);
        ushort c = rig.Add(3, indirect: true, buffers: 2);
        foreach (ushort expected in new[] { a, b, c })
        {
            DescriptorChain chain = rig.Pop();
            Assert.Equal(expected, chain.Head);
            buffers[expected] = VringRig.Buffers(chain);
        }

        rig.Vring.AddUsed(b, 7);
        Drain(rig, seen);
        return (a, b, c);
    }

    [Fact]
    public void Layout_IsTheSpecs_AndAFreshRegionIsSetUpFromTheRingBaseAtTheFirstStart()
    {
        Assert.Equal(8256UL, InflightRegion.QueueStride(256, packed: true)); // DPDK: 32 * 256 + 29, rounded up to 64
        Assert.Equal(64UL * 3, InflightRegion.RegionSize(3, 1, packed: true));
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        byte[] h = ReadHeader(rig);
        Assert.Equal(1, BitConverter.ToUInt16(h, 8)); // version, set at the start
        Assert.Equal(8, BitConverter.ToUInt16(h, 10));
        Assert.Equal(0, BitConverter.ToUInt16(h, 12)); // free_head
        Assert.Equal(0, BitConverter.ToUInt16(h, 14));
        Assert.Equal(0, BitConverter.ToUInt16(h, 16)); // used_idx
        Assert.Equal(1, h[20]); // used_wrap_counter
        Assert.Equal(1, h[21]);
        for (int e = 0; e < 8; e++)
        {
            Assert.Equal(e + 1, BitConverter.ToUInt16(ReadEntry(rig, e), 2));
        }
    }

    [Fact]
    public void PopAndCompletion_WriteTheChainCopies_TheFreeList_AndThePosition()
    {
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        ushort a = rig.Add(1, buffers: 2);
        DescriptorChain chain = rig.Pop();
        byte[] head = ReadEntry(rig, 0);
        Assert.Equal(1, head[0]);
        Assert.Equal(2, BitConverter.ToUInt16(head, 6)); // num
        Assert.Equal(1, BitConverter.ToUInt16(head, 4)); // last
        Assert.Equal(0UL, BitConverter.ToUInt64(head, 8)); // counter
        byte[] last = ReadEntry(rig, 1);
        Assert.Equal(a, BitConverter.ToUInt16(last, 16)); // the buffer id is in the chain's last descriptor
        Assert.Equal(VringRig.Data + 0x1000 + 0x100, BitConverter.ToUInt64(last, 24));
        Assert.Equal((ushort)VirtqDescriptorFlags.Next, (ushort)(BitConverter.ToUInt16(head, 18) & (ushort)VirtqDescriptorFlags.Next));
        byte[] h = ReadHeader(rig);
        Assert.Equal(2, BitConverter.ToUInt16(h, 12));
        Assert.Equal(2, BitConverter.ToUInt16(h, 14));

        rig.Vring.AddUsed(chain.Head, 5);
        h = ReadHeader(rig);
        Assert.Equal(0, ReadEntry(rig, 0)[0]);
        Assert.Equal(0, BitConverter.ToUInt16(h, 12)); // the chain's entries back at the front of the free list
        Assert.Equal(0, BitConverter.ToUInt16(h, 14));
        Assert.Equal(2, BitConverter.ToUInt16(h, 16));
        Assert.Equal(2, BitConverter.ToUInt16(h, 18));
        Assert.Equal(2, BitConverter.ToUInt16(ReadEntry(rig, 1), 2)); // last.next = the old free head
    }

    public enum CompletionCrash
    {
        /// <summary>free_head and used_idx advanced, the used element not yet in the ring.</summary>
        BeforeTheUsedWrite,

        /// <summary>The used element in the ring, the head still marked inflight, the old_ fields not updated.</summary>
        AfterTheUsedWrite,

        /// <summary>The mark cleared, the old_ fields not updated.</summary>
        BeforeTheOldFields,
    }

    [Theory]
    [InlineData(CompletionCrash.BeforeTheUsedWrite)]
    [InlineData(CompletionCrash.AfterTheUsedWrite)]
    [InlineData(CompletionCrash.BeforeTheOldFields)]
    public void BackendDiedInACompletion_NewBackendRollsItBackOrForward_AndEveryIdIsUsedOnce(CompletionCrash crash)
    {
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        var seen = new List<ushort>();
        var buffers = new Dictionary<ushort, List<VirtqBuffer>>();
        (ushort a, ushort b, ushort c) = PopThreeCompleteMiddle(rig, seen, buffers);
        byte[] before = ReadAll(rig);
        ushort slot = ((PackedQueue)rig.Device).NextUsed;
        byte[] ringSlot = rig.Ram.GetSpan(rig.Packed!.DescriptorRingAddress + (slot * 16UL), 16).ToArray();
        rig.Vring.AddUsed(c, 3);
        byte[] after = ReadAll(rig);

        // The old_ fields (and, before the used write, the mark and the ring slot) as they were.
        byte[] state = (byte[])after.Clone();
        Array.Copy(before, 14, state, 14, 2);
        Array.Copy(before, 16, state, 18, 2);
        state[21] = before[20];
        int cEntry = EntryOf(before, c);
        if (crash != CompletionCrash.BeforeTheOldFields)
        {
            state[Header + (Entry * cEntry)] = 1;
        }

        Fd.PWrite(rig.RegionFd!, state, 0);
        if (crash == CompletionCrash.BeforeTheUsedWrite)
        {
            ringSlot.CopyTo(rig.Ram.GetSpan(rig.Packed.DescriptorRingAddress + (slot * 16UL), 16));
        }

        (Vring ring, InflightRegion region, int resubmitted) = rig.NewBackend();
        using (region)
        {
            ushort[] expected = crash == CompletionCrash.BeforeTheUsedWrite ? [a, c] : [a];
            Assert.Equal(expected.Length, resubmitted);
            foreach (ushort id in expected)
            {
                Assert.True(ring.TryPopDescriptorChain(out DescriptorChain again));
                Assert.Equal(id, again.Head);
                Assert.Equal(buffers[id], VringRig.Buffers(again));
                ring.AddUsed(id, 1);
            }

            // New requests continue at the right slot.
            ushort d = rig.Add(4, buffers: 1);
            Assert.True(ring.TryPopDescriptorChain(out DescriptorChain fresh));
            Assert.Equal(d, fresh.Head);
            Assert.Equal(VringRig.Data + 0x4000, VringRig.Buffers(fresh)[0].Address);
            Assert.False(ring.TryPopDescriptorChain(out _));
            ring.AddUsed(d, 1);
            Drain(rig, seen);
            Assert.Equal(new[] { a, b, c, d }.Order(), seen.Order());
            Assert.Equal(0, CountInflight(ReadAll(rig)));
            ring.Stop();
            ring.Queue.Dispose();
        }
    }

    [Fact]
    public void BackendDiedInAPop_TheHalfRecordedChainIsFetchedFromTheRingAgain()
    {
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        var seen = new List<ushort>();
        ushort a = rig.Add(1, buffers: 2);
        ushort b = rig.Add(2, buffers: 3);
        rig.Pop();
        rig.Pop();
        rig.Vring.AddUsed(b, 1);
        ushort c = rig.Add(3, buffers: 2);
        byte[] before = ReadAll(rig);
        rig.Pop();
        byte[] after = ReadAll(rig);

        // The head entry marked inflight with its counter and the copies written; old_free_head not moved.
        byte[] state = (byte[])after.Clone();
        Array.Copy(before, 14, state, 14, 2);
        Fd.PWrite(rig.RegionFd!, state, 0);

        (Vring ring, InflightRegion region, int resubmitted) = rig.NewBackend();
        using (region)
        {
            Assert.Equal(1, resubmitted);
            Assert.True(ring.TryPopDescriptorChain(out DescriptorChain first));
            Assert.Equal(a, first.Head);
            Assert.True(ring.TryPopDescriptorChain(out DescriptorChain second));
            Assert.Equal(c, second.Head);
            Assert.Equal(VringRig.Data + 0x3000, VringRig.Buffers(second)[0].Address);
            ring.AddUsed(c, 1);
            ring.AddUsed(a, 1);
            Drain(rig, seen);
            Assert.Equal(new[] { a, b, c }.Order(), seen.Order());
            ring.Stop();
            ring.Queue.Dispose();
        }
    }

    [Fact]
    public void BackendDiedAgainMidRecovery_TheThirdResubmitsWhatIsLeft_InTheFirstFetchOrder()
    {
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        var seen = new List<ushort>();
        var buffers = new Dictionary<ushort, List<VirtqBuffer>>();
        (ushort a, ushort b, ushort c) = PopThreeCompleteMiddle(rig, seen, buffers);

        (Vring second, InflightRegion region2, int resubmitted) = rig.NewBackend();
        Assert.Equal(2, resubmitted);
        Assert.True(second.TryPopDescriptorChain(out DescriptorChain ra));
        Assert.Equal(a, ra.Head);
        second.AddUsed(a, 1);
        Assert.True(second.TryPopDescriptorChain(out DescriptorChain rc));
        Assert.Equal(c, rc.Head);
        ushort d = rig.Add(4, buffers: 2);
        Assert.True(second.TryPopDescriptorChain(out DescriptorChain rd));
        Assert.Equal(d, rd.Head);

        // The second back-end dies holding c (resubmitted) and d (new).
        (Vring third, InflightRegion region3, int again) = rig.NewBackend();
        using (region2)
        using (region3)
        {
            Assert.Equal(2, again);
            Assert.True(third.TryPopDescriptorChain(out DescriptorChain x));
            Assert.Equal(c, x.Head);
            Assert.Equal(buffers[c], VringRig.Buffers(x));
            Assert.True(third.TryPopDescriptorChain(out DescriptorChain y));
            Assert.Equal(d, y.Head);
            Assert.False(third.TryPopDescriptorChain(out _));
            third.AddUsed(d, 1);
            third.AddUsed(c, 1);
            Drain(rig, seen);
            Assert.Equal(new[] { a, b, c, d }.Order(), seen.Order());
            third.Stop();
            third.Queue.Dispose();
            second.Queue.Dispose();
        }
    }

    [Fact]
    public void ChainPutBack_IsNotResubmitted_AndAResubmissionPutBackKeepsItsMark()
    {
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        var seen = new List<ushort>();
        ushort a = rig.Add(1, buffers: 2);
        ushort b = rig.Add(2, buffers: 1);
        rig.Pop();
        DescriptorChain cb = rig.Pop();
        rig.Vring.Unpop(cb);
        Assert.Equal(1, CountInflight(ReadAll(rig)));

        (Vring ring, InflightRegion region, int resubmitted) = rig.NewBackend();
        using (region)
        {
            Assert.Equal(1, resubmitted);
            Assert.True(ring.TryPopDescriptorChain(out DescriptorChain ra));
            Assert.Equal(a, ra.Head);
            ring.Unpop(ra);
            Assert.Equal(1, ring.Inflight!.PendingResubmissions);
            Assert.True(ring.TryPopDescriptorChain(out ra));
            Assert.Equal(a, ra.Head);
            Assert.True(ring.TryPopDescriptorChain(out DescriptorChain rb));
            Assert.Equal(b, rb.Head);
            ring.AddUsed(b, 1);
            ring.AddUsed(a, 1);
            Drain(rig, seen);
            Assert.Equal(new[] { a, b }.Order(), seen.Order());
            ring.Stop();
            ring.Queue.Dispose();
        }
    }

    [Fact]
    public void ManyLaps_OutOfOrder_RegionStaysConsistent_AndARestartResubmitsExactlyTheHeldOnes()
    {
        using var rig = VringRig.CreatePacked(size: 16, inflight: true);
        var random = new Random(7);
        var held = new List<ushort>();
        var seen = new List<ushort>();
        int n = 0;
        for (int round = 0; round < 200; round++)
        {
            while (rig.Packed!.CanAdd(3))
            {
                rig.Add(n++ % 256, indirect: random.Next(4) == 0, buffers: 1 + random.Next(3));
            }

            while (rig.Vring.TryPopDescriptorChain(out DescriptorChain chain))
            {
                held.Add(chain.Head);
            }

            // Complete a random half, out of order.
            for (int k = held.Count / 2; k > 0; k--)
            {
                int i = random.Next(held.Count);
                rig.Vring.AddUsed(held[i], 1);
                held.RemoveAt(i);
            }

            Drain(rig, seen);
            Assert.Equal(held.Count, CountInflight(ReadAll(rig)));
        }

        (Vring ring, InflightRegion region, int resubmitted) = rig.NewBackend();
        using (region)
        {
            Assert.Equal(held.Count, resubmitted);
            var again = new List<ushort>();
            while (ring.TryPopDescriptorChain(out DescriptorChain chain))
            {
                again.Add(chain.Head);
                ring.AddUsed(chain.Head, 1);
            }

            Assert.Equal(held, again); // in fetch order
            ring.Stop();
            ring.Queue.Dispose();
        }
    }

    public static TheoryData<string, int, byte[], string> Garbage => new()
    {
        { "version", 8, [2, 0], "version" },
        { "desc_num", 10, [9, 0], "does not fit" },
        { "used_idx past the queue", 16, [8, 0], "does not fit" },
        { "wrap counter", 20, [2], "does not fit" },
        { "free_head past the entries", 14, [9, 0], "does not fit" },
        { "free list loop", Header + (Entry * 7) + 2, [3, 0], "loops" },
        { "free list out of range", Header + (Entry * 7) + 2, [0x40, 0], "free list entry" },
        { "inflight byte", Header + (Entry * 5), [7], "inflight byte" },
        { "num zero", Header + 6, [0, 0], "descriptors" },
        { "chain into the free list", Header + 2, [2, 0], "free or in another chain" },
        { "last mismatch", Header + 4, [0, 0], "last says" },
        { "buffer id out of range", Header + Entry + 16, [0x20, 0], "buffer id" },
        { "entry lost", Header + (Entry * 5) + 2, [7, 0], "hold" },
        { "next flag", Header + 18, [0, 0], "flags" },
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void GarbageInTheRegion_FailsTheStartWithTheReason_AndChangesNothing(string what, int offset, byte[] bytes, string reason)
    {
        using var rig = VringRig.CreatePacked(size: 8, inflight: true);
        rig.Add(1, buffers: 2);
        rig.Pop(); // entries 0-1 in flight, 2..7 free
        // "entry lost": 5 -> 7 skips entry 6, which is then neither free nor in a chain.
        Fd.PWrite(rig.RegionFd!, bytes, offset);
        Assert.NotEmpty(what);
        byte[] before = ReadAll(rig);
        VhostUserProtocolException e = Assert.Throws<VhostUserProtocolException>(() => rig.NewBackend());
        Assert.Contains("packed inflight region", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Equal(before, ReadAll(rig));
    }

    private static void Drain(VringRig rig, List<ushort> seen)
    {
        while (rig.TryGetUsed(out ushort id, out _))
        {
            seen.Add(id); // buffer ids are reused once used: each test checks the multiset it expects
        }
    }

    private static int EntryOf(byte[] region, ushort id)
    {
        ushort entries = BitConverter.ToUInt16(region, 10);
        for (int e = 0; e < entries; e++)
        {
            int at = Header + (Entry * e);
            if (region[at] == 1 && BitConverter.ToUInt16(region, Header + (Entry * BitConverter.ToUInt16(region, at + 4)) + 16) == id)
            {
                return e;
            }
        }

        throw new InvalidOperationException($"buffer id {id} is not in flight in the region");
    }

    private static int CountInflight(byte[] region)
    {
        ushort entries = BitConverter.ToUInt16(region, 10);
        return Enumerable.Range(0, entries).Count(e => region[Header + (Entry * e)] == 1);
    }

    private static byte[] ReadHeader(VringRig rig) => ReadAt(rig, 0, Header);

    private static byte[] ReadEntry(VringRig rig, int e) => ReadAt(rig, Header + (Entry * e), Entry);

    private static byte[] ReadAll(VringRig rig) => ReadAt(rig, 0, (int)InflightRegion.QueueStride(rig.Packed!.Size, packed: true));

    private static byte[] ReadAt(VringRig rig, long offset, int length)
    {
        var b = new byte[length];
        Fd.PRead(rig.RegionFd!, b, offset);
        return b;
    }
}
