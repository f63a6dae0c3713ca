using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Vhost.Virtio;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// The device side of a split virtqueue (virtio 1.x section 2.7): descriptor table, available
/// ring (driver area) and used ring (device area).
/// </summary>
/// <remarks>
/// Memory ordering: <c>avail.idx</c> is read with <see cref="Volatile.Read(ref readonly ushort)"/>
/// before the ring entries; <c>used.idx</c> is written with
/// <see cref="Volatile.Write(ref ushort, ushort)"/> after the used element; a full fence
/// precedes every read of a notification-suppression field.
/// </remarks>
public sealed unsafe class SplitQueue : Virtqueue
{
    private const int RingHeader = 4;

    private ushort _nextAvail;
    private ushort _nextUsed;
    private ushort _signalledUsed;
    private bool _signalledUsedValid;
    private ushort _publishedUsed;
    private ushort _availCache;
    private int _availCacheGeneration = -1;
    private int _usedFlagsGeneration = -1;
    private VirtqUsedFlags _usedFlags;

    /// <summary>Creates a split queue accepting sizes up to <paramref name="maxSize"/> (a power of two).</summary>
    /// <param name="maxSize">The largest size (1..32768, a power of two).</param>
    public SplitQueue(ushort maxSize = 256)
        : base(maxSize)
    {
        if (!ushort.IsPow2(maxSize))
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "the maximum split queue size must be a power of two");
        }
    }

    /// <summary>The index (free-running, mod 2^16) of the next available ring entry the device will read.</summary>
    public ushort NextAvail
    {
        get => _nextAvail;
        set
        {
            ThrowIfReady();
            _nextAvail = value;
            _availCacheGeneration = -1;
        }
    }

    /// <summary>The index (free-running, mod 2^16) of the next used ring entry the device will write.</summary>
    public ushort NextUsed
    {
        get => _nextUsed;
        set
        {
            ThrowIfReady();
            _nextUsed = value;
            _publishedUsed = value;
            _signalledUsedValid = false;
        }
    }

    /// <summary>The driver's current <c>avail.idx</c> (acquire read).</summary>
    public ushort AvailIndex
    {
        get
        {
            ThrowIfNotReady();

            // SAFETY: DriverArea covers the whole available ring (checked at Bind), and the queue holds its memory snapshot.
            return Volatile.Read(ref *(ushort*)(DriverArea + 2));
        }
    }

    /// <summary>The spec's <c>vring_need_event</c>: whether moving an index from <paramref name="oldIndex"/> to <paramref name="newIndex"/> crosses <paramref name="eventIndex"/> (all mod 2^16).</summary>
    /// <param name="eventIndex">The event index the other side published (used_event or avail_event).</param>
    /// <param name="newIndex">The index after the update.</param>
    /// <param name="oldIndex">The index at the previous notification decision.</param>
    /// <returns>True when a notification is needed.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool NeedEvent(ushort eventIndex, ushort newIndex, ushort oldIndex)
        => (ushort)(newIndex - eventIndex - 1) < (ushort)(newIndex - oldIndex);

    /// <summary>Bytes of the available ring for <paramref name="size"/> entries (with used_event).</summary>
    /// <param name="size">Queue size.</param>
    /// <returns>6 + 2 × size.</returns>
    internal static ulong AvailRingSize(ushort size) => SplitRingLayout.AvailableRingSize(size);

    /// <summary>Bytes of the used ring for <paramref name="size"/> entries (with avail_event).</summary>
    /// <param name="size">Queue size.</param>
    /// <returns>6 + 8 × size.</returns>
    internal static ulong UsedRingSize(ushort size) => SplitRingLayout.UsedRingSize(size);

    /// <inheritdoc/>
    public override bool TryPopDescriptorChain(out DescriptorChain chain)
    {
        ThrowIfNotReady();
        ushort size = Size;

        // avail.idx is read (acquire) only when the entries seen at the last read are used up:
        // the line the driver writes is not pulled over once per chain.
        if (_availCache == _nextAvail || _availCacheGeneration != Generation)
        {
            // SAFETY: DriverArea covers 6 + 2*size bytes of a live mapping (checked at Bind).
            ushort availIdx = Volatile.Read(ref *(ushort*)(DriverArea + 2));
            ushort pending = (ushort)(availIdx - _nextAvail);
            if (pending == 0)
            {
                chain = default;
                return false;
            }

            if (pending > size)
            {
                throw new VirtqueueException(VirtqueueError.AvailIndexOutOfRange, $"avail.idx {availIdx} is {pending} entries past the device's next index {_nextAvail}, more than the queue size {size}");
            }

            _availCache = availIdx;
            _availCacheGeneration = Generation;
        }

        // SAFETY: DriverArea covers 6 + 2*size bytes of a live mapping (checked at Bind); the
        // slot index is masked by size - 1, and the entry was published before the avail.idx read above.

        ushort head = *(ushort*)(DriverArea + RingHeader + (2 * (_nextAvail & (size - 1))));
        _nextAvail++;
        if (head >= size)
        {
            throw new VirtqueueException(VirtqueueError.HeadIndexOutOfRange, $"available ring entry {(ushort)(_nextAvail - 1)} names head descriptor {head}, but the queue has {size}");
        }

        // The head's descriptor is read when the chain is enumerated, usually right after a burst
        // of pops: start loading it now (the driver wrote it on another CPU).
        if (Sse.IsSupported)
        {
            // SAFETY: a prefetch never faults; head < size, inside the descriptor table.
            Sse.Prefetch0(DescriptorTable + ((nuint)head * VirtqDescriptor.Size));
        }

        chain = new DescriptorChain(this, head, head, 0, Generation);
        return true;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Only the next avail index moves. The entries up to the <c>avail.idx</c> read last stay valid
    /// (the driver cannot reuse an available-ring slot, nor the chain's descriptors, before the device
    /// returns them), so the next pop reads the entry again without a new read of <c>avail.idx</c>.
    /// With EVENT_IDX, a later <see cref="EnableNotification"/> publishes the rewound index as
    /// <c>avail_event</c> and reports the chain as available, as if it had never been popped.
    /// </remarks>
    internal override void Rewind(in DescriptorChain chain)
    {
        if (chain.Queue != this || chain.Head >= Size)
        {
            throw new InvalidOperationException($"chain {chain.Head} was not popped from this queue");
        }

        _nextAvail--;
    }

    /// <inheritdoc/>
    internal override bool TryGetSingleBuffer(in DescriptorChain chain, out VirtqBuffer buffer)
    {
        ThrowIfNotReady();
        if (chain.Stamp != Generation)
        {
            throw StaleChain(chain.Head);
        }

        // SAFETY: head < size (checked at pop) and the table (size * 16 bytes) lies in the live
        // snapshot. The descriptor is copied once; only the copy is validated and used.
        VirtqDescriptor d = Unsafe.ReadUnaligned<VirtqDescriptor>(DescriptorTable + ((nuint)chain.Head * VirtqDescriptor.Size));
        if ((d.Flags & (VirtqDescriptorFlags.Next | VirtqDescriptorFlags.Indirect)) != 0)
        {
            buffer = default;
            return false;
        }

        return TryValidateSoleDescriptor(d.Address, d.Length, d.Flags, out buffer);
    }

    /// <inheritdoc/>
    internal override void PrefetchFirstBuffer(in DescriptorChain chain)
    {
        GuestMemory? memory = Memory;
        if (!IsReady || memory is null || Iotlb is not null || chain.Queue != this || chain.Stamp != Generation || chain.Head >= Size)
        {
            return;
        }

        // SAFETY: head < size and the table (size * 16 bytes) lies in the live snapshot. The copy is
        // not validated: it only chooses what to prefetch (an unmapped address is ignored).
        VirtqDescriptor d = Unsafe.ReadUnaligned<VirtqDescriptor>(DescriptorTable + ((nuint)chain.Head * VirtqDescriptor.Size));
        memory.Prefetch(d.Address);
    }

    /// <inheritdoc/>
    internal override bool TryGetInflightChain(ushort head, out DescriptorChain chain)
    {
        chain = IsReady && head < Size ? new DescriptorChain(this, head, head, 0, Generation) : default;
        return IsReady && head < Size;
    }

    /// <inheritdoc/>
    public override void AddUsed(ushort head, uint length)
    {
        AddUsedDeferred(head, length);
        PublishUsed();
    }

    /// <inheritdoc/>
    public override void AddUsedDeferred(ushort head, uint length)
    {
        ThrowIfNotReady();
        ushort size = Size;
        if (head >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(head), head, $"head must be below the queue size {size}");
        }

        int slot = _nextUsed & (size - 1);

        // SAFETY: DeviceArea covers 6 + 8*size bytes (checked at Bind); slot < size.
        var element = (VirtqUsedElement*)(DeviceArea + RingHeader + (VirtqUsedElement.Size * slot));
        element->Id = head;
        element->Length = length;
        _nextUsed++;
        LogDeviceAreaWrite(RingHeader + (ulong)(VirtqUsedElement.Size * slot), VirtqUsedElement.Size);
    }

    /// <inheritdoc/>
    public override void PublishUsed()
    {
        ThrowIfNotReady();
        if (_publishedUsed == _nextUsed)
        {
            return;
        }

        // SAFETY: used.idx inside DeviceArea; the release store orders the elements before it.
        Volatile.Write(ref *(ushort*)(DeviceArea + 2), _nextUsed);
        _publishedUsed = _nextUsed;

        // Logged after the store (see LogDeviceAreaWrite). A front-end reads the log only after
        // GET_VRING_BASE has stopped the ring, so the last completion's mark is always there.
        LogDeviceAreaWrite(2, sizeof(ushort));
    }

    /// <inheritdoc/>
    public override bool NeedsNotification()
    {
        PublishUsed();
        Interlocked.MemoryBarrier();
        if (EventIdx)
        {
            // SAFETY: used_event sits right after the available ring, inside DriverArea.
            ushort usedEvent = Volatile.Read(ref *(ushort*)(DriverArea + RingHeader + (2 * Size)));
            ushort old = _signalledUsed;
            bool valid = _signalledUsedValid;
            _signalledUsed = _nextUsed;
            _signalledUsedValid = true;
            return !valid || NeedEvent(usedEvent, _nextUsed, old);
        }

        // SAFETY: avail.flags is the first field of DriverArea.
        var flags = (VirtqAvailFlags)Volatile.Read(ref *(ushort*)DriverArea);
        return (flags & VirtqAvailFlags.NoInterrupt) == 0;
    }

    /// <inheritdoc/>
    public override bool EnableNotification()
    {
        ThrowIfNotReady();
        if (EventIdx)
        {
            // SAFETY: avail_event sits right after the used ring, inside DeviceArea.
            Volatile.Write(ref *(ushort*)(DeviceArea + RingHeader + (VirtqUsedElement.Size * Size)), _nextAvail);
            LogDeviceAreaWrite(RingHeader + ((ulong)VirtqUsedElement.Size * Size), sizeof(ushort));
        }
        else
        {
            SetUsedFlags(0);
        }

        Interlocked.MemoryBarrier();

        // SAFETY: avail.idx inside DriverArea.
        return Volatile.Read(ref *(ushort*)(DriverArea + 2)) != _nextAvail;
    }

    /// <inheritdoc/>
    public override void DisableNotification()
    {
        ThrowIfNotReady();
        if (!EventIdx)
        {
            SetUsedFlags(VirtqUsedFlags.NoNotify);
        }
    }

    /// <inheritdoc/>
    public override uint GetVringBase() => _nextAvail;

    /// <summary>Restores the next avail index from SET_VRING_BASE (bits 0-15); the next used index is set to the same value, as the ring was drained when it was saved. Call <see cref="SyncNextUsedFromRing"/> after activation to pick up the guest's used index instead.</summary>
    /// <param name="value">Next avail index in bits 0-15.</param>
    public override void SetVringBase(uint value)
    {
        ThrowIfReady();
        _nextAvail = (ushort)value;
        _nextUsed = (ushort)value;
        _publishedUsed = (ushort)value;
        _availCacheGeneration = -1;
        _signalledUsedValid = false;
    }

    /// <summary>Sets the next used index from <c>used.idx</c> in guest memory (after a reconnect, where the ring may not have been drained).</summary>
    public void SyncNextUsedFromRing()
    {
        ThrowIfNotReady();

        // SAFETY: used.idx inside DeviceArea.
        _nextUsed = Volatile.Read(ref *(ushort*)(DeviceArea + 2));
        _publishedUsed = _nextUsed;
        _signalledUsedValid = false;
    }

    /// <inheritdoc/>
    private protected override bool IsValidSize(ushort size) => ushort.IsPow2(size);

    /// <inheritdoc/>
    private protected override void GetAreaLayout(out ulong driverAreaSize, out ulong driverAreaAlignment, out ulong deviceAreaSize, out ulong deviceAreaAlignment)
    {
        driverAreaSize = AvailRingSize(Size);
        driverAreaAlignment = 2;
        deviceAreaSize = UsedRingSize(Size);
        deviceAreaAlignment = 4;
    }

    /// <inheritdoc/>
    private protected override void ResetIndices()
    {
        _nextAvail = 0;
        _nextUsed = 0;
        _publishedUsed = 0;
        _availCacheGeneration = -1;
        _usedFlagsGeneration = -1;
        _signalledUsed = 0;
        _signalledUsedValid = false;
    }

    private void SetUsedFlags(VirtqUsedFlags flags)
    {
        // The device is the only writer of used.flags: skip the store (and the cache line it
        // would pull back from the driver) when the value is already there.
        if (_usedFlagsGeneration == Generation && _usedFlags == flags)
        {
            return;
        }

        _usedFlags = flags;
        _usedFlagsGeneration = Generation;
        // SAFETY: used.flags is the first field of DeviceArea.
        Volatile.Write(ref *(ushort*)DeviceArea, (ushort)flags);
        LogDeviceAreaWrite(0, sizeof(ushort));
    }
}
