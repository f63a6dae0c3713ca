using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Virtio;

/// <summary>
/// Inflight bookkeeping of one split queue in an <see cref="InflightRegion"/>: a popped head is
/// marked inflight with an increasing counter; a used head records itself as the last batch,
/// then the used ring is published, then the head is cleared and the used index recorded. After a
/// back-end restart, <see cref="Recover"/> repairs a half-finished completion and lists the heads
/// still inflight in the order they were fetched, to be resubmitted before new ones.
/// </summary>
/// <remarks>Used by one worker thread at a time; allocation-free except in <see cref="Recover"/>.</remarks>
internal sealed unsafe class InflightTracker : InflightTracking
{
    private readonly VhostUserInflightSplitQueue* _header;
    private readonly VhostUserInflightSplitDescriptor* _descriptors;
    private readonly ushort _entries;
    private ulong _counter;
    private ushort[] _resubmit = [];
    private int _resubmitNext;

    /// <summary>Attaches to queue <paramref name="queueIndex"/> of <paramref name="region"/>.</summary>
    public InflightTracker(InflightRegion region, int queueIndex)
    {
        byte* queue = region.QueueBase(queueIndex);

        // SAFETY: the queue's region holds the 16-byte header and QueueSize descriptors (size checked at Map/Create).
        _header = (VhostUserInflightSplitQueue*)queue;
        _descriptors = (VhostUserInflightSplitDescriptor*)(queue + sizeof(VhostUserInflightSplitQueue));
        _entries = region.QueueSize;
    }

    /// <summary>Heads waiting to be resubmitted.</summary>
    public override int PendingResubmissions => _resubmit.Length - _resubmitNext;

    /// <inheritdoc/>
    public override bool TryTakeResubmission(Virtqueue queue, out DescriptorChain chain)
    {
        if (!TryTakeResubmission(out ushort head))
        {
            chain = default;
            return false;
        }

        chain = queue.ResubmittedChain(head);
        return true;
    }

    /// <inheritdoc/>
    public override bool TryReturnResubmission(Virtqueue queue, in DescriptorChain chain) => TryReturnResubmission(chain.Head);

    /// <inheritdoc/>
    public override void MarkInflight(Virtqueue queue, in DescriptorChain chain) => MarkInflight(chain.Head);

    /// <inheritdoc/>
    public override void UnmarkInflight(Virtqueue queue, in DescriptorChain chain) => UnmarkInflight(chain.Head);

    /// <inheritdoc/>
    public override void AddUsed(Virtqueue queue, ushort head, uint length)
    {
        var split = (SplitQueue)queue;
        BeginUsed(head);
        split.AddUsed(head, length);
        EndUsed(head, split.NextUsed);
    }

    /// <summary>
    /// Validates the queue's region for a ring of <paramref name="queueSize"/> whose used ring
    /// holds <paramref name="ringUsedIndex"/>, repairs the last batch when the back-end stopped
    /// between publishing a used element and clearing its inflight mark, and builds the
    /// resubmission list ordered by fetch counter.
    /// </summary>
    /// <returns>The number of heads inflight (the next avail index is the used index plus this).</returns>
    /// <exception cref="VhostUserException">The region is malformed (hostile or corrupt front-end data).</exception>
    public ushort Recover(ushort queueSize, ushort ringUsedIndex)
    {
        // SAFETY: header and descriptors lie inside the mapped queue region; each field is read once.
        VhostUserInflightSplitQueue header = *_header;
        if (header.Version != VhostUserInflightSplitQueue.CurrentVersion)
        {
            throw Malformed($"version {header.Version}, expected {VhostUserInflightSplitQueue.CurrentVersion}");
        }

        if (header.DescriptorCount != _entries || queueSize > _entries)
        {
            throw Malformed($"{header.DescriptorCount} descriptor entries for a region of {_entries} and a queue of {queueSize}");
        }

        if (header.UsedIndex != ringUsedIndex)
        {
            // The back-end died after publishing the used element of the last batch but before
            // clearing its inflight mark: that request is complete.
            if (header.LastBatchHead >= queueSize)
            {
                throw Malformed($"last batch head {header.LastBatchHead} is outside the queue of {queueSize}");
            }

            Volatile.Write(ref _descriptors[header.LastBatchHead].Inflight, 0);
            Volatile.Write(ref _header->UsedIndex, ringUsedIndex);
        }

        int count = 0;
        var heads = new ushort[queueSize];
        var counters = new ulong[queueSize];
        ulong maxCounter = 0;
        for (ushort i = 0; i < queueSize; i++)
        {
            VhostUserInflightSplitDescriptor d = _descriptors[i];
            if (!d.IsValid())
            {
                throw Malformed($"descriptor {i} has inflight byte {d.Inflight}");
            }

            // Entries beyond the queue size are ignored; entries of a smaller old queue are cleared.
            if (d.Inflight == 1)
            {
                heads[count] = i;
                counters[count] = d.Counter;
                count++;
                maxCounter = Math.Max(maxCounter, d.Counter);
            }
        }

        Array.Sort(counters, heads, 0, count);
        _resubmit = heads.AsSpan(0, count).ToArray();
        _resubmitNext = 0;
        _counter = count == 0 ? 0 : maxCounter + 1;
        return (ushort)count;
    }

    /// <summary>The next head to resubmit, in fetch order.</summary>
    public bool TryTakeResubmission(out ushort head)
    {
        if (_resubmitNext < _resubmit.Length)
        {
            head = _resubmit[_resubmitNext++];
            return true;
        }

        head = 0;
        return false;
    }

    /// <summary>Marks a freshly popped head inflight.</summary>
    public void MarkInflight(ushort head)
    {
        if (head >= _entries)
        {
            return;
        }

        // SAFETY: head < entry count; the region is mapped while the tracker is attached.
        _descriptors[head].Counter = _counter++;
        Volatile.Write(ref _descriptors[head].Inflight, 1);
    }

    /// <summary>
    /// A freshly popped head was put back (<see cref="Vring.Unpop"/>): it is not inflight any more,
    /// so a restarted back-end does not resubmit it, and the fetch counter goes back when it was
    /// the last one given out.
    /// </summary>
    public void UnmarkInflight(ushort head)
    {
        if (head >= _entries)
        {
            return;
        }

        // SAFETY: head < entry count; the region is mapped while the tracker is attached.
        Volatile.Write(ref _descriptors[head].Inflight, 0);
        if (_counter != 0 && _descriptors[head].Counter == _counter - 1)
        {
            _counter--;
        }
    }

    /// <summary>
    /// A resubmitted head was put back (<see cref="Vring.Unpop"/>): it goes back to the front of the
    /// resubmission list and keeps its inflight mark (its place in the available ring was consumed
    /// by the back-end that fetched it first).
    /// </summary>
    /// <returns>False when <paramref name="head"/> is not the resubmission taken last.</returns>
    public bool TryReturnResubmission(ushort head)
    {
        if (_resubmitNext == 0 || _resubmit[_resubmitNext - 1] != head)
        {
            return false;
        }

        _resubmitNext--;
        return true;
    }

    /// <summary>Before the used element of <paramref name="head"/> is published.</summary>
    public void BeginUsed(ushort head)
    {
        if (head < _entries)
        {
            // SAFETY: header inside the mapped region.
            Volatile.Write(ref _header->LastBatchHead, head);
        }
    }

    /// <summary>After the used element is published: clear the mark and record the used index.</summary>
    public void EndUsed(ushort head, ushort usedIndex)
    {
        if (head < _entries)
        {
            // SAFETY: head < entry count; header inside the mapped region.
            Volatile.Write(ref _descriptors[head].Inflight, 0);
        }

        Volatile.Write(ref _header->UsedIndex, usedIndex);
    }

    private static VhostUserProtocolException Malformed(string what) => new(VhostUserViolation.InvalidMessage, $"inflight region: {what}");
}
