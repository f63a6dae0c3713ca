using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// Inflight bookkeeping of one packed queue in an <see cref="InflightRegion"/> with the spec's
/// packed layout (<c>QueueRegionPacked</c>, "Inflight I/O tracking" in the vhost-user spec). A
/// packed ring reuses a chain's slots for used elements while older chains are still in flight, so
/// the region keeps a copy of every in-flight chain's ring descriptors: entries come off a free list
/// at pop (head entry marked inflight with an increasing counter, its <c>num</c> and <c>last</c>
/// recorded), go back onto it at completion, and the header keeps the free-list head, the used
/// position and the used wrap counter twice (current and <c>old_</c>), so that a restarted back-end
/// can tell from the ring whether the completion the old one was in the middle of reached the
/// driver, and roll it forward or back.
/// </summary>
/// <remarks>
/// <para>The update order (each store that decides recovery is a release store; the used position
/// and wrap counters are one 8-byte store, the two free-list heads one 4-byte store, so recovery
/// never sees half of either):</para>
/// <para>pop: head entry <c>num</c> 0, counter, inflight 1; each descriptor copied into the next free
/// entry; <c>num</c>, <c>last</c>; then <c>free_head</c> = <c>old_free_head</c> = the entry after the
/// chain. A crash before the last store leaves the head on the free list: recovery clears it and
/// the chain is fetched from the ring again.</para>
/// <para>completion: the chain's entries go onto the free list (<c>desc[last].next</c>, then
/// <c>free_head</c>); <c>used_idx</c>/<c>used_wrap_counter</c> advance; the used descriptor is written
/// to the ring; inflight 0; <c>old_free_head</c>; then the <c>old_</c> position. Recovery with
/// <c>used_idx</c> != <c>old_used_idx</c> reads the ring slot at <c>old_used_idx</c>: still available
/// in the <c>old_used_wrap_counter</c> lap means the used element never reached the ring (roll back:
/// the request is resubmitted), anything else means it did (roll forward: the request is done).</para>
/// <para>The tracker keeps its own copy of the free list and of each chain's entries, so at run
/// time it only writes to the region: a front-end scribbling over it cannot steer the data path.
/// <see cref="Recover"/> reads the region once, validates all of it (ranges, loops, entries
/// shared between lists, entry accounting, buffer ids) before changing anything, and throws a
/// <see cref="VhostUserProtocolException"/> for a malformed one.</para>
/// <para>After a crash QEMU cannot know a packed ring's position (it has no used index in guest
/// memory to read it back from) and sends the one it had at the last start; a region the ring used
/// therefore decides the position: the used position is the region's, the avail position is that
/// plus the ring descriptors of every chain still in flight. A region not set up yet (version 0,
/// as GET_INFLIGHT_FD made it) is laid out from the ring's base (SET_VRING_BASE) instead.</para>
/// </remarks>
internal sealed unsafe class PackedInflightTracker : InflightTracking
{
    /// <summary>No entry: a buffer id the region does not track (in flight before the region was set up).</summary>
    private const ushort NoEntry = ushort.MaxValue;

    private const int PositionOffset = 16;
    private const int FreeHeadOffset = 12;

    private readonly VhostUserInflightPackedQueue* _header;
    private readonly VhostUserInflightPackedDescriptor* _descriptors;
    private readonly ushort _entries;
    private readonly ushort[] _next;
    private readonly ushort[] _num;
    private readonly ushort[] _last;
    private readonly ushort[] _entryOfId;
    private ushort _free;
    private int _freeCount;
    private ulong _counter;
    private Resubmission[] _resubmit = [];
    private int _resubmitNext;

    /// <summary>Attaches to queue <paramref name="queueIndex"/> of <paramref name="region"/> (packed layout).</summary>
    public PackedInflightTracker(InflightRegion region, int queueIndex)
    {
        if (!region.IsPacked)
        {
            throw new ArgumentException("the region has the split layout", nameof(region));
        }

        byte* queue = region.QueueBase(queueIndex);

        // SAFETY: the queue's region holds the 32-byte header and QueueSize entries (size checked at Map/Create).
        _header = (VhostUserInflightPackedQueue*)queue;
        _descriptors = (VhostUserInflightPackedDescriptor*)(queue + sizeof(VhostUserInflightPackedQueue));
        _entries = region.QueueSize;
        _next = new ushort[_entries];
        _num = new ushort[_entries];
        _last = new ushort[_entries];
        _entryOfId = new ushort[_entries];
        _entryOfId.AsSpan().Fill(NoEntry);
    }

    /// <inheritdoc/>
    public override int PendingResubmissions => _resubmit.Length - _resubmitNext;

    /// <summary>
    /// Sets the ring's position from the region and lists the chains to resubmit (the queue is
    /// configured and not ready: size and areas set). A region not set up yet is laid out from the
    /// queue's base instead. Validates the whole queue region first; changes nothing when it is malformed.
    /// </summary>
    /// <param name="queue">The queue, not ready, its size and ring addresses set.</param>
    /// <param name="memory">The guest memory the ring is in (the slot at <c>old_used_idx</c> is read).</param>
    /// <returns>The number of chains in flight (to resubmit).</returns>
    /// <exception cref="VhostUserProtocolException">The region is malformed (hostile or corrupt front-end data).</exception>
    public int Recover(PackedQueue queue, GuestMemory memory)
    {
        ushort size = queue.Size;
        if (size > _entries)
        {
            throw Malformed($"the queue of {size} is larger than the region's {_entries} entries");
        }

        // SAFETY: the header lies inside the mapped queue region; it is read once.
        VhostUserInflightPackedQueue h = *_header;
        if (h.Version == 0)
        {
            SetUp(queue.GetVringBase());
            return 0;
        }

        if (h.Version != VhostUserInflightPackedQueue.CurrentVersion)
        {
            throw Malformed($"version {h.Version}, expected {VhostUserInflightPackedQueue.CurrentVersion}");
        }

        if (h.DescriptorCount != _entries || h.UsedWrapCounter > 1 || h.OldUsedWrapCounter > 1 || h.UsedIndex >= size || h.OldUsedIndex >= size
            || h.FreeHead > _entries || h.OldFreeHead > _entries)
        {
            throw Malformed($"header (desc_num {h.DescriptorCount}, free_head {h.FreeHead}/{h.OldFreeHead}, used_idx {h.UsedIndex}/{h.OldUsedIndex}, wrap {h.UsedWrapCounter}/{h.OldUsedWrapCounter}) does not fit a queue of {size} in {_entries} entries");
        }

        // An update in progress: committed when the used element reached the ring, else rolled back.
        ushort freeHead = h.OldFreeHead;
        ushort used = h.OldUsedIndex;
        bool wrap = h.OldUsedWrapCounter == 1;
        if (h.UsedIndex != h.OldUsedIndex || h.UsedWrapCounter != h.OldUsedWrapCounter)
        {
            var flags = (VirtqDescriptorFlags)memory.Read<ushort>(queue.DescriptorTableAddress + ((ulong)h.OldUsedIndex * PackedDescriptor.Size) + PackedDescriptor.FlagsOffset);
            if (!PackedQueue.IsAvailable(flags, wrap))
            {
                freeHead = h.FreeHead;
                used = h.UsedIndex;
                wrap = h.UsedWrapCounter == 1;
            }
        }

        // SAFETY: _entries entries follow the header inside the mapped queue region; each is read once, here.
        var d = new ReadOnlySpan<VhostUserInflightPackedDescriptor>(_descriptors, _entries).ToArray();
        var state = new byte[_entries];
        const byte Free = 1;
        const byte InChain = 2;
        int freeCount = 0;
        for (int e = freeHead; e != _entries; e = d[e].Next)
        {
            if (e > _entries || state[e] != 0)
            {
                throw Malformed(e > _entries ? $"free list entry {e} is out of range" : $"the free list loops at entry {e}");
            }

            state[e] = Free;
            freeCount++;
        }

        var chains = new List<Resubmission>();
        var idSeen = new bool[size];
        int ringDescriptors = 0;
        for (int e = 0; e < _entries; e++)
        {
            if (d[e].Inflight > 1)
            {
                throw Malformed($"entry {e} has inflight byte {d[e].Inflight}");
            }

            if (d[e].Inflight == 0 || state[e] == Free)
            {
                continue;
            }

            if (state[e] == InChain)
            {
                throw Malformed($"entry {e} is marked inflight inside another chain");
            }

            ushort num = d[e].Num;
            if (num == 0 || num > size)
            {
                throw Malformed($"chain at entry {e} has {num} descriptors (queue of {size})");
            }

            var descriptors = new PackedDescriptor[num];
            int x = e;
            for (int k = 0; ; k++)
            {
                if (x >= _entries || state[x] != 0)
                {
                    throw Malformed(x >= _entries ? $"chain at entry {e} links to entry {x}, out of range" : $"chain at entry {e} runs into entry {x}, which is free or in another chain");
                }

                state[x] = InChain;
                VhostUserInflightPackedDescriptor c = d[x];
                var flags = (VirtqDescriptorFlags)c.Flags;
                if (((flags & VirtqDescriptorFlags.Next) != 0) != (k < num - 1))
                {
                    throw Malformed($"descriptor {k} of the {num} of the chain at entry {e} has flags 0x{c.Flags:x}");
                }

                descriptors[k] = new PackedDescriptor { Address = c.Address, Length = c.Length, Id = c.Id, Flags = flags };
                if (k == num - 1)
                {
                    break;
                }

                x = c.Next;
            }

            ushort id = d[x].Id;
            if (d[e].Last != x || id >= size || idSeen[id])
            {
                throw Malformed(d[e].Last != x ? $"chain at entry {e} ends at entry {x}, its last says {d[e].Last}" : $"chain at entry {e} has buffer id {id}, out of range or in flight twice");
            }

            idSeen[id] = true;
            ringDescriptors += num;
            chains.Add(new Resubmission(id, (ushort)e, (ushort)x, d[e].Counter, descriptors));
        }

        if (ringDescriptors > size || freeCount + ringDescriptors != _entries)
        {
            throw Malformed($"{chains.Count} chains in flight hold {ringDescriptors} entries and the free list {freeCount}, of {_entries} entries for a queue of {size}");
        }

        // Valid: write the recovered state back (the roll forward or back, free entries cleared).
        for (int e = 0; e < _entries; e++)
        {
            // Free entries' links were walked above, and so were every chain's but its last entry's,
            // which its completion sets before the free list uses it.
            _next[e] = d[e].Next;
            if (state[e] == Free && d[e].Inflight != 0)
            {
                Volatile.Write(ref _descriptors[e].Inflight, 0);
            }
        }

        _entryOfId.AsSpan().Fill(NoEntry);
        ulong maxCounter = 0;
        foreach (Resubmission r in chains)
        {
            _num[r.Entry] = (ushort)r.Descriptors.Length;
            _last[r.Entry] = r.Last;
            _entryOfId[r.Id] = r.Entry;
            maxCounter = Math.Max(maxCounter, r.Counter);
        }

        chains.Sort(static (a, b) => a.Counter.CompareTo(b.Counter));
        _resubmit = [.. chains];
        _resubmitNext = 0;
        _counter = chains.Count == 0 ? 0 : maxCounter + 1;
        _free = freeHead;
        _freeCount = freeCount;
        WriteFreeHeads(freeHead);
        WritePosition(used, wrap, used, wrap);

        int avail = used + ringDescriptors;
        bool availWrap = wrap;
        if (avail >= size)
        {
            avail -= size;
            availWrap = !wrap;
        }

        queue.SetVringBase((uint)avail | (availWrap ? 1u << 15 : 0) | ((uint)used << 16) | (wrap ? 1u << 31 : 0));
        return chains.Count;
    }

    /// <summary>
    /// Lays the queue region out for a ring at <paramref name="vringBase"/> (GET_VRING_BASE
    /// encoding) with nothing tracked in flight: every entry on the free list, the used position
    /// the ring's, then version 1. Chains already in flight in the ring are not in the region (their
    /// completions still move its used position).
    /// </summary>
    public void SetUp(uint vringBase)
    {
        ushort used = (ushort)((vringBase >> 16) & 0x7fff);
        bool wrap = (vringBase & (1u << 31)) != 0;
        for (int e = 0; e < _entries; e++)
        {
            // SAFETY: e < entry count, inside the mapped region.
            _descriptors[e] = new VhostUserInflightPackedDescriptor { Next = (ushort)(e + 1) };
            _next[e] = (ushort)(e + 1);
        }

        _entryOfId.AsSpan().Fill(NoEntry);
        _resubmit = [];
        _resubmitNext = 0;
        _counter = 0;
        _free = 0;
        _freeCount = _entries;
        _header->DescriptorCount = _entries;
        WriteFreeHeads(0);
        WritePosition(used, wrap, used, wrap);
        Volatile.Write(ref _header->Version, VhostUserInflightPackedQueue.CurrentVersion);
    }

    /// <inheritdoc/>
    public override bool TryTakeResubmission(Virtqueue queue, out DescriptorChain chain)
    {
        if (_resubmitNext >= _resubmit.Length)
        {
            chain = default;
            return false;
        }

        chain = ((PackedQueue)queue).AdoptChain(_resubmit[_resubmitNext].Descriptors);
        _resubmitNext++;
        return true;
    }

    /// <inheritdoc/>
    public override bool TryReturnResubmission(Virtqueue queue, in DescriptorChain chain)
    {
        if (_resubmitNext == 0 || _resubmit[_resubmitNext - 1].Id != chain.Head)
        {
            return false;
        }

        ((PackedQueue)queue).ReleaseAdopted(chain);
        _resubmitNext--;
        return true;
    }

    /// <inheritdoc/>
    public override void MarkInflight(Virtqueue queue, in DescriptorChain chain)
    {
        var packed = (PackedQueue)queue;
        int n = chain.RingCount;
        ushort id = chain.Head;
        if (id >= _entries || n == 0 || n > _freeCount || !packed.TryGetChainStore(id, chain.Stamp, chain.First, out PackedDescriptor[] store, out int[] storeNext))
        {
            // Unreachable with a queue no larger than the region (the queue holds at most Size descriptors in flight).
            return;
        }

        ushort head = _free;

        // SAFETY: every entry index comes from the tracker's own free list (< entry count).
        VhostUserInflightPackedDescriptor* h = _descriptors + head;
        h->Num = 0;
        h->Counter = _counter++;
        Volatile.Write(ref h->Inflight, 1);
        ushort entry = head;
        ushort last = head;
        int s = chain.First;
        for (int k = 0; k < n; k++)
        {
            ref PackedDescriptor c = ref store[s];
            VhostUserInflightPackedDescriptor* e = _descriptors + entry;
            e->Address = c.Address;
            e->Length = c.Length;
            e->Flags = (ushort)c.Flags;
            e->Id = c.Id;
            last = entry;
            entry = _next[entry];
            s = storeNext[s];
        }

        h->Num = (ushort)n;
        h->Last = last;
        WriteFreeHeads(entry);
        _free = entry;
        _freeCount -= n;
        _num[head] = (ushort)n;
        _last[head] = last;
        _entryOfId[id] = head;
    }

    /// <inheritdoc/>
    public override void UnmarkInflight(Virtqueue queue, in DescriptorChain chain)
    {
        ushort id = chain.Head;
        ushort head = id < _entries ? _entryOfId[id] : NoEntry;
        if (head == NoEntry)
        {
            return;
        }

        // Back onto the free list (a crash from here on leaves the chain either in flight, to be
        // resubmitted, or free, to be fetched from the ring again: it was the latest one popped).
        ushort last = _last[head];
        _descriptors[last].Next = _free;
        _next[last] = _free;
        WriteFreeHeads(head);
        Volatile.Write(ref _descriptors[head].Inflight, 0);
        _free = head;
        _freeCount += _num[head];
        _entryOfId[id] = NoEntry;
        if (_counter != 0 && _descriptors[head].Counter == _counter - 1)
        {
            _counter--;
        }
    }

    /// <inheritdoc/>
    public override void AddUsed(Virtqueue queue, ushort head, uint length)
    {
        var packed = (PackedQueue)queue;
        ushort entry = head < _entries ? _entryOfId[head] : NoEntry;
        int n = packed.InFlightRingCount(head);
        if (n == 0)
        {
            packed.AddUsed(head, length); // not in flight: throws, the region untouched
            return;
        }

        ushort oldUsed = packed.NextUsed;
        bool oldWrap = packed.UsedWrapCounter;
        int used = oldUsed + n;
        bool wrap = oldWrap;
        if (used >= packed.Size)
        {
            used -= packed.Size;
            wrap = !wrap;
        }

        if (entry != NoEntry)
        {
            ushort last = _last[entry];
            _descriptors[last].Next = _free;
            _next[last] = _free;
            _free = entry;
            Volatile.Write(ref _header->FreeHead, entry);
        }

        WritePosition((ushort)used, wrap, oldUsed, oldWrap);
        packed.AddUsed(head, length);
        if (entry != NoEntry)
        {
            Volatile.Write(ref _descriptors[entry].Inflight, 0);
            _freeCount += _num[entry];
            _entryOfId[head] = NoEntry;
            Volatile.Write(ref _header->OldFreeHead, _free);
        }

        WritePosition((ushort)used, wrap, (ushort)used, wrap);
    }

    private static VhostUserProtocolException Malformed(string what) => new(VhostUserViolation.InvalidMessage, $"packed inflight region: {what}");

    /// <summary><c>free_head</c> and <c>old_free_head</c> in one 4-byte release store.</summary>
    private void WriteFreeHeads(ushort head)
        => Volatile.Write(ref *(uint*)((byte*)_header + FreeHeadOffset), head | ((uint)head << 16));

    /// <summary><c>used_idx</c>, <c>old_used_idx</c>, <c>used_wrap_counter</c>, <c>old_used_wrap_counter</c> (and two padding bytes) in one 8-byte release store.</summary>
    private void WritePosition(ushort used, bool wrap, ushort oldUsed, bool oldWrap)
        => Volatile.Write(ref *(ulong*)((byte*)_header + PositionOffset), used | ((ulong)oldUsed << 16) | ((wrap ? 1UL : 0) << 32) | ((oldWrap ? 1UL : 0) << 40));

    /// <summary>A chain to resubmit: its buffer id, head and last entries, fetch counter and a validated copy of its ring descriptors.</summary>
    private readonly record struct Resubmission(ushort Id, ushort Entry, ushort Last, ulong Counter, PackedDescriptor[] Descriptors);
}
