using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary><see cref="Vring.Unpop"/>: a popped chain put back is popped again, and nothing of its pop remains.</summary>
public sealed class VringUnpopTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Chains_put_back_newest_first_are_popped_again_in_order_and_the_base_excludes_them(bool packed, bool indirect)
    {
        using VringRig rig = packed ? VringRig.CreatePacked() : VringRig.CreateSplit();
        Vring v = rig.Vring;
        ushort[] heads = [rig.Add(0, indirect), rig.Add(1, indirect), rig.Add(2, indirect)];
        DescriptorChain[] popped = [rig.Pop(), rig.Pop(), rig.Pop()];
        List<VirtqBuffer>[] buffers = [.. popped.Select(VringRig.Buffers)];
        uint afterFirst = packed ? Base(indirect ? 1 : 2) : 1u;
        Assert.Equal(heads, popped.Select(c => c.Head));

        v.Unpop(popped[2]);
        v.Unpop(popped[1]);

        Assert.Equal(afterFirst, v.Queue.GetVringBase());
        Assert.Equal(1, v.InFlight);
        Assert.Equal(1, v.PoppedCount);
        for (int i = 1; i < 3; i++)
        {
            DescriptorChain again = rig.Pop();
            Assert.Equal(heads[i], again.Head);
            Assert.Equal(buffers[i], VringRig.Buffers(again));
        }

        Assert.False(v.TryPopDescriptorChain(out _));
        Assert.Equal(3, v.InFlight);

        // The chains popped again complete as any other: the driver gets each id once.
        foreach (ushort head in heads)
        {
            v.AddUsed(head, 0);
        }

        var used = new List<ushort>();
        while (rig.TryGetUsed(out ushort id, out _))
        {
            used.Add(id);
        }

        Assert.Equal(heads, used);
        Assert.Equal(0, v.InFlight);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Out_of_order_put_backs_are_refused_and_change_nothing(bool packed)
    {
        using VringRig rig = packed ? VringRig.CreatePacked() : VringRig.CreateSplit();
        Vring v = rig.Vring;
        rig.Add(0);
        rig.Add(1);
        rig.Add(2);
        DescriptorChain a = rig.Pop();
        DescriptorChain b = rig.Pop();
        uint before = v.Queue.GetVringBase();

        // Not the newest.
        Assert.Contains("newest first", Assert.Throws<InvalidOperationException>(() => v.Unpop(a)).Message, StringComparison.Ordinal);
        Assert.Equal(before, v.Queue.GetVringBase());
        Assert.Equal(2, v.InFlight);

        // Twice.
        v.Unpop(b);
        Assert.Throws<InvalidOperationException>(() => v.Unpop(b));

        // Never past a chain popped later and completed: B's slots (packed) or entry (split) are used.
        b = rig.Pop();
        v.AddUsed(b.Head, 0);
        uint afterUse = v.Queue.GetVringBase();
        Assert.Contains("newest first", Assert.Throws<InvalidOperationException>(() => v.Unpop(a)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => v.Unpop(b));
        Assert.Equal(afterUse, v.Queue.GetVringBase());
        Assert.Equal(1, v.InFlight);

        // The latest chain still out goes back.
        DescriptorChain c = rig.Pop();
        v.Unpop(c);
        Assert.Equal(c.Head, rig.Pop().Head);

        // A default chain, or one of another ring, is not this ring's.
        Assert.Throws<InvalidOperationException>(() => v.Unpop(default));
        using VringRig other = packed ? VringRig.CreatePacked() : VringRig.CreateSplit();
        other.Add(0);
        Assert.Throws<InvalidOperationException>(() => v.Unpop(other.Pop()));
    }

    [Fact]
    public void A_chain_completed_from_another_thread_cannot_be_put_back()
    {
        using VringRig rig = VringRig.CreateSplit();
        Vring v = rig.Vring;
        rig.Add(0);
        DescriptorChain a = rig.Pop();

        // Queued by a completer thread, not applied yet (no worker): applied before the check.
        var completer = new Thread(() => v.Complete(a, 0));
        completer.Start();
        completer.Join();
        Assert.Throws<InvalidOperationException>(() => v.Unpop(a));
        Assert.Equal(0, v.InFlight);
        Assert.Equal(1u, v.Queue.GetVringBase());
        v.PublishUsed();
        Assert.True(rig.TryGetUsed(out ushort used, out _));
        Assert.Equal(a.Head, used);
    }

    [Fact]
    public void Packed_put_back_across_the_end_of_the_ring_flips_the_wrap_counter_back()
    {
        using VringRig rig = VringRig.CreatePacked(size: 8);
        Vring v = rig.Vring;
        var q = (PackedQueue)rig.Device;

        // Move both sides to slot 6 of the first lap.
        for (int i = 0; i < 3; i++)
        {
            rig.Add(i);
            v.AddUsed(rig.Pop().Head, 0);
            Assert.True(rig.TryGetUsed(out _, out _));
        }

        Assert.Equal((6, true), (q.NextAvail, q.AvailWrapCounter));

        // A three-descriptor chain over slots 6, 7 and 0 (second lap), then one in slot 1.
        ushort crossing = rig.Add(10, buffers: 3);
        ushort next = rig.Add(11);
        DescriptorChain a = rig.Pop();
        DescriptorChain b = rig.Pop();
        List<VirtqBuffer> aBuffers = VringRig.Buffers(a);
        Assert.Equal((3, crossing), (a.RingCount, a.Head));
        Assert.Equal((3, false), (q.NextAvail, q.AvailWrapCounter));

        v.Unpop(b);
        Assert.Equal((1, false), (q.NextAvail, q.AvailWrapCounter));
        v.Unpop(a);
        Assert.Equal((6, true), (q.NextAvail, q.AvailWrapCounter));
        Assert.Equal(6u | (1u << 15) | (6u << 16) | (1u << 31), q.GetVringBase());

        DescriptorChain again = rig.Pop();
        Assert.Equal((crossing, 3), (again.Head, again.RingCount));
        Assert.Equal(aBuffers, VringRig.Buffers(again));
        Assert.Equal(next, rig.Pop().Head);
        v.AddUsed(crossing, 0);
        v.AddUsed(next, 0);
        Assert.True(rig.TryGetUsed(out ushort first, out _));
        Assert.True(rig.TryGetUsed(out ushort second, out _));
        Assert.Equal((crossing, next), (first, second));
        Assert.Equal(8, rig.Packed!.FreeDescriptors);
    }

    [Fact]
    public void Split_event_idx_the_avail_event_follows_the_rewound_index_and_kicks_still_come()
    {
        using VringRig rig = VringRig.CreateSplit(eventIdx: true);
        Vring v = rig.Vring;
        SplitQueueDriverView driver = new(rig);
        rig.Add(0);
        rig.Add(1);
        rig.Add(2);
        rig.Split!.NeedsKick();
        DescriptorChain[] popped = [rig.Pop(), rig.Pop(), rig.Pop()];
        Assert.False(v.EnableNotification());
        Assert.Equal(3, driver.AvailEvent);

        v.Unpop(popped[2]);
        v.Unpop(popped[1]);

        // Reported as available again, and the driver is asked for a kick from the rewound index,
        // as if the two had never been popped.
        Assert.True(v.EnableNotification());
        Assert.Equal(1, driver.AvailEvent);
        Assert.Equal(popped[1].Head, rig.Pop().Head);
        Assert.Equal(popped[2].Head, rig.Pop().Head);
        Assert.False(v.EnableNotification());
        Assert.Equal(3, driver.AvailEvent);

        // The next buffer the driver posts is kicked (an avail_event left at the rewound index would
        // be behind the driver's index: no kick until 2^16 more buffers).
        rig.Add(3);
        Assert.True(rig.Split!.NeedsKick());
    }

    [Fact]
    public void Split_event_idx_put_back_after_an_enable_keeps_the_kick_for_the_next_buffer()
    {
        using VringRig rig = VringRig.CreateSplit(eventIdx: true);
        Vring v = rig.Vring;
        rig.Add(0);
        rig.Split!.NeedsKick();
        DescriptorChain a = rig.Pop();
        Assert.False(v.EnableNotification());
        Assert.Equal(1, rig.Split.AvailEvent);

        // The device goes to sleep with the chain put back and avail_event ahead of its index: the
        // driver's next buffer still crosses avail_event, so its kick wakes the device, which then
        // pops the chain put back first.
        v.Unpop(a);
        Assert.Equal(1, rig.Split.AvailEvent);
        ushort b = rig.Add(1);
        Assert.True(rig.Split.NeedsKick());
        Assert.Equal(a.Head, rig.Pop().Head);
        Assert.Equal(b, rig.Pop().Head);
    }

    [Fact]
    public void Packed_event_idx_the_device_event_follows_the_rewound_position()
    {
        using VringRig rig = VringRig.CreatePacked(size: 4, eventIdx: true);
        Vring v = rig.Vring;
        PackedQueueDriverView driver = new(rig);

        // To slot 3, then a chain over slots 3 and 0 (wrap).
        for (int i = 0; i < 3; i++)
        {
            rig.Add(i, buffers: 1);
            v.AddUsed(rig.Pop().Head, 0);
            Assert.True(rig.TryGetUsed(out _, out _));
        }

        rig.Add(5);
        DescriptorChain a = rig.Pop();
        Assert.False(v.EnableNotification());
        Assert.Equal(1, driver.OffsetAndWrap);                 // slot 1, wrap 0
        v.Unpop(a);
        Assert.True(v.EnableNotification());
        Assert.Equal(3 | 0x8000, driver.OffsetAndWrap);        // slot 3, wrap 1
        Assert.Equal(a.Head, rig.Pop().Head);
    }

    [Fact]
    public void Inflight_region_a_chain_put_back_loses_its_mark_so_a_restarted_backend_does_not_resubmit_it()
    {
        using VringRig rig = VringRig.CreateSplit(inflight: true);
        Vring v = rig.Vring;
        rig.Add(0);
        rig.Add(1);
        rig.Add(2);
        DescriptorChain a = rig.Pop();
        DescriptorChain b = rig.Pop();
        DescriptorChain c = rig.Pop();
        Assert.Equal((1, 2UL), rig.Mark(c.Head));

        v.Unpop(c);
        v.Unpop(b);
        Assert.Equal(0, rig.Mark(c.Head).Inflight);
        Assert.Equal(0, rig.Mark(b.Head).Inflight);
        Assert.Equal((1, 0UL), rig.Mark(a.Head));

        // The next pop takes the fetch counter the put-back chain had.
        DescriptorChain again = rig.Pop();
        Assert.Equal(b.Head, again.Head);
        Assert.Equal((1, 1UL), rig.Mark(b.Head));
        v.Unpop(again);

        // The back-end stops here and starts again from the region, as a restarted one does: it
        // resubmits A only, and its next avail index (used index plus the heads inflight) is the
        // base this one reported.
        Assert.Equal(1u, rig.Restart());
        Assert.Equal(1u, rig.Device.GetVringBase());
        Assert.Equal(1, v.Inflight!.PendingResubmissions);

        // A stayed in this device (abandoned): nothing is taken until it completes, late.
        Assert.False(v.TryPopDescriptorChain(out _));
        v.Complete(a, 0);
        v.DrainCompletions();
        Assert.Equal(1, v.DiscardedCompletions);
        Assert.Equal(a.Head, rig.Pop().Head);
        Assert.Equal(b.Head, rig.Pop().Head);
    }

    [Fact]
    public void Inflight_resubmissions_put_back_return_to_the_front_of_the_resubmission_list_with_their_marks()
    {
        using VringRig rig = VringRig.CreateSplit(inflight: true);
        Vring v = rig.Vring;

        // A previous back-end fetched heads 0 and 1 (entries 0 and 1) and died.
        ushort h0 = rig.Add(0);
        ushort h1 = rig.Add(1);
        ushort h2 = rig.Add(2);
        v.Stop();
        rig.SetMark(h1, 7);
        rig.SetMark(h0, 8);
        Assert.Equal(2, v.Start(rig.Memory, rig.Region));

        DescriptorChain r1 = rig.Pop();
        DescriptorChain r0 = rig.Pop();
        DescriptorChain n = rig.Pop();
        Assert.Equal((h1, h0, h2), (r1.Head, r0.Head, n.Head));

        // Newest first: the new chain rewinds the ring, the resubmissions go back to the list.
        Assert.Throws<InvalidOperationException>(() => v.Unpop(r0));
        v.Unpop(n);
        Assert.Equal(2u, v.Queue.GetVringBase());
        Assert.Equal(0, rig.Mark(h2).Inflight);
        v.Unpop(r0);
        v.Unpop(r1);
        Assert.Equal(2u, v.Queue.GetVringBase());
        Assert.Equal(2, v.Inflight!.PendingResubmissions);
        Assert.Equal((1, 7UL), rig.Mark(h1));
        Assert.Equal((1, 8UL), rig.Mark(h0));
        Assert.Equal(0, v.InFlight);

        Assert.Equal([h1, h0, h2], new[] { rig.Pop().Head, rig.Pop().Head, rig.Pop().Head });
    }

    [Fact]
    public void A_broken_ring_refuses_put_backs()
    {
        using VringRig rig = VringRig.CreateSplit();
        Vring v = rig.Vring;
        rig.Add(0);
        DescriptorChain a = rig.Pop();

        // avail.idx far past the device's index: the next pop breaks the ring.
        rig.Split!.SetAvailIndex(100);
        Assert.False(v.TryPopDescriptorChain(out _));
        Assert.True(v.IsBroken);
        Assert.Contains("broken", Assert.Throws<InvalidOperationException>(() => v.Unpop(a)).Message, StringComparison.Ordinal);
        Assert.Equal(1, v.InFlight);
    }

    /// <summary>The packed base after <paramref name="slots"/> descriptors popped from a fresh ring (both wrap counters 1).</summary>
    private static uint Base(int slots) => (uint)slots | (1u << 15) | (1u << 31);

    private sealed class SplitQueueDriverView(VringRig rig)
    {
        public ushort AvailEvent => rig.Split!.AvailEvent;
    }

    private sealed class PackedQueueDriverView(VringRig rig)
    {
        public ushort OffsetAndWrap => rig.Packed!.DeviceEvent.OffsetAndWrap;
    }
}
