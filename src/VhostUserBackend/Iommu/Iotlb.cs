using Vhost.User.Messages;

namespace VhostUserBackend.Iommu;

/// <summary>
/// The device IOTLB of one connection (VIRTIO_F_ACCESS_PLATFORM): what the front-end said, with
/// IOTLB_MSG updates and invalidations, about which I/O virtual addresses (IOVAs) map to which of
/// its user addresses, with which permission. The data path translates descriptor addresses
/// through it (<see cref="Translate"/>); a miss goes to the front-end on the back-end channel and
/// the worker waits for the update, bounded by <see cref="MissTimeout"/>.
/// </summary>
/// <remarks>
/// <para>The entries are an immutable array sorted by IOVA, never overlapping, replaced as a whole
/// by the control thread on every update or invalidation: a worker's lookup is one volatile read
/// and a binary search, without a lock and without allocating. A newer update replaces whatever
/// part of older entries it overlaps; an invalidation cuts its range out of every entry (entries
/// that only partly overlap keep the rest). At most <see cref="Capacity"/> entries are kept (DPDK's
/// default cache size); beyond, an older one is dropped: it is a cache, and a dropped entry only
/// costs one more miss.</para>
/// <para>Invalidation semantics: a translation is taken when a chain's descriptors are walked;
/// a buffer of a chain the device is working on stays where it was translated to (guest memory,
/// which stays mapped while the chain is in flight), as with a device that finished its DMA
/// mapping before the unmap. The next walk sees the invalidation. A running ring's own areas are
/// translated when it starts and when the memory table changes; they are not re-read at each
/// invalidation (a driver unmaps its rings only after resetting the device, which stops them).</para>
/// </remarks>
internal sealed partial class Iotlb
{
    /// <summary>The most entries kept (DPDK's IOTLB cache holds 2048 too).</summary>
    internal const int Capacity = 2048;

    private static readonly Comparison<Entry> s_byIova = static (a, b) => a.Iova.CompareTo(b.Iova);
    private readonly object _gate = new();
    private readonly List<Entry> _scratch = [];
    private Entry[] _entries = [];
    private long _version;
    private int _evictCursor;

    /// <summary>How long a worker waits for the front-end to answer a miss before the chain fails (default 1 s).</summary>
    internal TimeSpan MissTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Sends an IOTLB miss for an IOVA with the access wanted (the back-end channel), or null when there is no channel: a miss then fails at once. Called from any thread.</summary>
    internal Action<ulong, VhostIotlbAccess>? MissSender { get; set; }

    /// <summary>The number of entries.</summary>
    internal int Count => Volatile.Read(ref _entries).Length;

    /// <summary>The entries, sorted by IOVA (a snapshot).</summary>
    internal ReadOnlySpan<Entry> Entries => Volatile.Read(ref _entries);

    /// <summary>Bumped by every change; a waiter compares it with what it saw.</summary>
    internal long Version => Volatile.Read(ref _version);

    /// <summary>IOTLB update: <c>[iova, +size)</c> maps to <c>[userAddress, +size)</c> with <paramref name="permission"/>; replaces what it overlaps.</summary>
    /// <exception cref="ArgumentException">An empty range, or one that wraps past 2^64 in IOVA or user address space.</exception>
    internal void Update(ulong iova, ulong size, ulong userAddress, VhostIotlbAccess permission)
    {
        CheckRange(iova, size);
        if (userAddress > ulong.MaxValue - (size - 1))
        {
            throw new ArgumentException($"IOTLB update: user address 0x{userAddress:x} + 0x{size:x} wraps past 2^64");
        }

        ulong last = iova + (size - 1);
        lock (_gate)
        {
            CutOut(iova, last);
            if (_scratch.Count >= Capacity)
            {
                // A cache: drop an older entry (round robin over the positions, so no one range is always the victim).
                _scratch.RemoveAt(_evictCursor++ % _scratch.Count);
            }

            _scratch.Add(new Entry(iova, last, userAddress, permission));
            _scratch.Sort(s_byIova);
            Publish();
        }
    }

    /// <summary>IOTLB invalidation: nothing in <c>[iova, +size)</c> translates any more.</summary>
    /// <exception cref="ArgumentException">An empty range, or one that wraps past 2^64.</exception>
    internal void Invalidate(ulong iova, ulong size)
    {
        CheckRange(iova, size);
        lock (_gate)
        {
            CutOut(iova, iova + (size - 1));
            Publish();
        }
    }

    /// <summary>Forgets every entry (reset, disconnect, ACCESS_PLATFORM no longer negotiated).</summary>
    internal void Clear()
    {
        lock (_gate)
        {
            _scratch.Clear();
            Publish();
        }
    }

    /// <summary>The entry that contains <paramref name="iova"/>.</summary>
    /// <returns>False when none does.</returns>
    internal bool TryFind(ulong iova, out Entry entry)
    {
        Entry[] entries = Volatile.Read(ref _entries);
        int lo = 0;
        int hi = entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            ref readonly Entry e = ref entries[mid];
            if (iova < e.Iova)
            {
                hi = mid - 1;
            }
            else if (iova > e.Last)
            {
                lo = mid + 1;
            }
            else
            {
                entry = e;
                return true;
            }
        }

        entry = default;
        return false;
    }

    /// <summary>Waits until the IOTLB changes after <paramref name="seenVersion"/>, at most <paramref name="timeout"/>.</summary>
    /// <returns>False on timeout.</returns>
    internal bool WaitForChange(long seenVersion, TimeSpan timeout)
    {
        lock (_gate)
        {
            long deadline = Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds);
            while (_version == seenVersion)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0 || !Monitor.Wait(_gate, (int)Math.Min(left, int.MaxValue)))
                {
                    return _version != seenVersion;
                }
            }

            return true;
        }
    }

    private static void CheckRange(ulong iova, ulong size)
    {
        if (size == 0 || iova > ulong.MaxValue - (size - 1))
        {
            throw new ArgumentException($"IOTLB range 0x{iova:x} + 0x{size:x} is empty or wraps past 2^64");
        }
    }

    /// <summary>Loads the entries into the scratch list without the part of each inside <c>[first, last]</c> (under the gate).</summary>
    private void CutOut(ulong first, ulong last)
    {
        _scratch.Clear();
        foreach (Entry e in _entries)
        {
            if (e.Last < first || e.Iova > last)
            {
                _scratch.Add(e);
                continue;
            }

            if (e.Iova < first)
            {
                _scratch.Add(e with { Last = first - 1 });
            }

            if (e.Last > last)
            {
                _scratch.Add(new Entry(last + 1, e.Last, e.UserAddress + (last + 1 - e.Iova), e.Permission));
            }
        }
    }

    /// <summary>Publishes the scratch list as the new entries and wakes the waiters (under the gate).</summary>
    private void Publish()
    {
        Volatile.Write(ref _entries, [.. _scratch]);
        _version++;
        Monitor.PulseAll(_gate);
    }

    /// <summary>One translation: <c>[Iova, Last]</c> maps to user addresses from <see cref="UserAddress"/> on.</summary>
    /// <param name="Iova">First IOVA.</param>
    /// <param name="Last">Last IOVA (inclusive).</param>
    /// <param name="UserAddress">The front-end's user address of <paramref name="Iova"/>.</param>
    /// <param name="Permission">What the device may do there.</param>
    internal readonly record struct Entry(ulong Iova, ulong Last, ulong UserAddress, VhostIotlbAccess Permission);
}
