using System.Runtime.CompilerServices;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// The device side of a packed virtqueue (virtio 1.x section 2.8, VIRTIO_F_RING_PACKED): one
/// descriptor ring with avail/used wrap counters, plus the driver and device event
/// suppression structures. Buffers may be completed in order or out of order.
/// </summary>
/// <remarks>
/// A packed ring's descriptor slots are reused by the driver as soon as enough used
/// descriptors come back, even while older buffers are still in flight. So
/// <see cref="TryPopDescriptorChain"/> copies the chain's ring descriptors (once, flags read
/// with acquire semantics first) into a per-queue store sized to the queue, and the chain is
/// enumerated from that copy. Indirect tables are read from guest memory.
/// </remarks>
public sealed unsafe class PackedQueue : Virtqueue
{
    private const ushort WrapBit = 0x8000;

    private ushort _nextAvail;
    private bool _availWrap = true;
    private ushort _nextUsed;
    private bool _usedWrap = true;
    private int _usedSinceSignal;
    private bool _signalledUsedValid;

    private PackedDescriptor[] _store = [];
    private int[] _storeNext = [];
    private int _freeHead = -1;
    private int[] _chainFirst = [];
    private ushort[] _chainCount = [];
    private uint[] _chainSerial = [];
    private bool _storeValid;

    /// <summary>Creates a packed queue accepting sizes up to <paramref name="maxSize"/>.</summary>
    /// <param name="maxSize">The largest size (1..32768; need not be a power of two).</param>
    public PackedQueue(ushort maxSize = 256)
        : base(maxSize)
    {
    }

    /// <summary>The ring slot the device reads next.</summary>
    public ushort NextAvail => _nextAvail;

    /// <summary>The device's avail wrap counter.</summary>
    public bool AvailWrapCounter => _availWrap;

    /// <summary>The ring slot the device writes the next used descriptor to.</summary>
    public ushort NextUsed => _nextUsed;

    /// <summary>The device's used wrap counter.</summary>
    public bool UsedWrapCounter => _usedWrap;

    /// <summary>Whether a descriptor with <paramref name="flags"/> is available to the device whose wrap counter is <paramref name="wrapCounter"/>.</summary>
    /// <param name="flags">The descriptor flags.</param>
    /// <param name="wrapCounter">The device's avail wrap counter for that slot.</param>
    /// <returns>True when the avail bit equals the wrap counter and the used bit does not.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsAvailable(VirtqDescriptorFlags flags, bool wrapCounter)
        => ((flags & VirtqDescriptorFlags.Available) != 0) == wrapCounter && ((flags & VirtqDescriptorFlags.Used) != 0) != wrapCounter;

    /// <summary>
    /// The packed-ring event decision: whether the used positions written since
    /// <paramref name="oldIndex"/> up to <paramref name="newIndex"/> (ring slots, current used
    /// wrap counter <paramref name="usedWrap"/>) cross the driver's <c>off_wrap</c>.
    /// </summary>
    /// <param name="offsetAndWrap">The driver's event <c>off_wrap</c>.</param>
    /// <param name="newIndex">The device's next used slot now.</param>
    /// <param name="oldIndex"><paramref name="newIndex"/> minus the number of slots used since the previous decision, mod 2^16 (so a full lap is not mistaken for no progress).</param>
    /// <param name="usedWrap">The device's used wrap counter now.</param>
    /// <param name="size">The queue size.</param>
    /// <returns>True when the driver asked for a notification in that range (conservatively true after a full lap).</returns>
    internal static bool NeedEvent(ushort offsetAndWrap, ushort newIndex, ushort oldIndex, bool usedWrap, ushort size)
    {
        int offset = offsetAndWrap & ~WrapBit;
        bool wrap = (offsetAndWrap & WrapBit) != 0;
        if (wrap != usedWrap)
        {
            offset -= size;
        }

        return SplitQueue.NeedEvent((ushort)offset, newIndex, oldIndex);
    }

    /// <inheritdoc/>
    public override bool TryPopDescriptorChain(out DescriptorChain chain)
    {
        ThrowIfNotReady();
        ushort size = Size;
        var ring = (PackedDescriptor*)DescriptorTable;
        ushort slot = _nextAvail;
        bool wrap = _availWrap;
        int first = -1;
        int previous = -1;
        ushort count = 0;
        while (true)
        {
            if (count == size)
            {
                FreeEntries(first, count);
                throw new VirtqueueException(VirtqueueError.ChainTooLong, $"the chain at slot {_nextAvail} has more than {size} descriptors");
            }

            // SAFETY: slot < size and DescriptorTable covers size descriptors of a live mapping.
            PackedDescriptor* d = ring + slot;
            var flags = (VirtqDescriptorFlags)Volatile.Read(ref *(ushort*)&d->Flags);
            if (!IsAvailable(flags, wrap))
            {
                if (count == 0)
                {
                    chain = default;
                    return false;
                }

                FreeEntries(first, count);
                throw new VirtqueueException(VirtqueueError.ChainNotAvailable, $"the chain at slot {_nextAvail} continues into slot {slot}, which is not available");
            }

            int entry = TakeEntry(ref first, previous);
            if (entry < 0)
            {
                FreeEntries(first, count);
                throw TooManyInFlight(size);
            }

            ref PackedDescriptor copy = ref _store[entry];
            copy.Address = d->Address;
            copy.Length = d->Length;
            copy.Id = d->Id;
            copy.Flags = flags;
            previous = entry;
            count++;
            if (++slot == size)
            {
                slot = 0;
                wrap = !wrap;
            }

            if ((flags & VirtqDescriptorFlags.Next) == 0)
            {
                break;
            }
        }

        ushort id = _store[previous].Id;
        if (id >= size || _chainCount[id] != 0)
        {
            FreeEntries(first, count);
            throw new VirtqueueException(VirtqueueError.InvalidBufferId, id >= size
                ? $"buffer id {id} at slot {_nextAvail} is not below the queue size {size}"
                : $"buffer id {id} at slot {_nextAvail} is already in flight");
        }

        _chainFirst[id] = first;
        _chainCount[id] = count;
        uint serial = ++_chainSerial[id];
        _nextAvail = slot;
        _availWrap = wrap;
        chain = new DescriptorChain(this, id, first, count, (int)serial);
        return true;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The chain's descriptors are still in the ring, available: the device never wrote a used
    /// descriptor over them, because used descriptors are written in ring order from the used
    /// position, and every chain completed so far was popped before this one (a chain popped after
    /// it was put back first). The copies are freed and the next pop copies the descriptors again.
    /// </remarks>
    internal override void Rewind(in DescriptorChain chain)
    {
        ushort id = chain.Head;
        if (chain.Queue != this || !TryGetChainStore(id, chain.Stamp, chain.First, out _, out _))
        {
            throw new InvalidOperationException($"buffer id {id} is not in flight in this queue");
        }

        ushort count = _chainCount[id];
        int slot = _nextAvail - count;
        bool wrap = _availWrap;
        if (slot < 0)
        {
            slot += Size;
            wrap = !wrap;
        }

        FreeEntries(_chainFirst[id], count);
        _chainCount[id] = 0;
        _nextAvail = (ushort)slot;
        _availWrap = wrap;
    }

    /// <inheritdoc/>
    internal override bool TryGetInflightChain(ushort head, out DescriptorChain chain)
    {
        if (!IsReady || head >= Size || _chainCount[head] == 0)
        {
            chain = default;
            return false;
        }

        chain = new DescriptorChain(this, head, _chainFirst[head], _chainCount[head], (int)_chainSerial[head]);
        return true;
    }

    /// <summary>
    /// Takes a chain a previous back-end left in flight (from the inflight region's copies of its
    /// ring descriptors) back into the queue, as if just popped: enumerable, completed with
    /// <see cref="AddUsed"/> like any other. The ring position does not move (the chain's slots
    /// were consumed by the back-end that popped it first).
    /// </summary>
    /// <param name="descriptors">The chain's ring descriptors in order; the last one carries the buffer id.</param>
    /// <returns>The chain.</returns>
    /// <exception cref="VirtqueueException">The buffer id is out of range or already in flight, or the queue has no room.</exception>
    internal DescriptorChain AdoptChain(ReadOnlySpan<PackedDescriptor> descriptors)
    {
        ThrowIfNotReady();
        ushort size = Size;
        ushort id = descriptors.IsEmpty ? ushort.MaxValue : descriptors[^1].Id;
        if (descriptors.Length > size || id >= size || _chainCount[id] != 0)
        {
            throw new VirtqueueException(VirtqueueError.InvalidBufferId, $"the resubmitted buffer id {id} ({descriptors.Length} descriptors) is out of range or already in flight");
        }

        int first = -1;
        int previous = -1;
        for (int i = 0; i < descriptors.Length; i++)
        {
            int entry = TakeEntry(ref first, previous);
            if (entry < 0)
            {
                FreeEntries(first, i);
                throw TooManyInFlight(size);
            }

            _store[entry] = descriptors[i];
            previous = entry;
        }

        _chainFirst[id] = first;
        _chainCount[id] = (ushort)descriptors.Length;
        uint serial = ++_chainSerial[id];
        return new DescriptorChain(this, id, first, (ushort)descriptors.Length, (int)serial);
    }

    /// <summary>Drops an adopted chain without completing it (it goes back to the resubmission list): its copies are freed, the ring position stays.</summary>
    /// <exception cref="InvalidOperationException">The chain is not in flight in this queue.</exception>
    internal void ReleaseAdopted(in DescriptorChain chain)
    {
        ushort id = chain.Head;
        if (chain.Queue != this || !TryGetChainStore(id, chain.Stamp, chain.First, out _, out _))
        {
            throw new InvalidOperationException($"buffer id {id} is not in flight in this queue");
        }

        FreeEntries(_chainFirst[id], _chainCount[id]);
        _chainCount[id] = 0;
    }

    /// <summary>The number of ring descriptors of in-flight buffer <paramref name="id"/> (0 when it is not in flight): how far its used element moves the used position.</summary>
    internal ushort InFlightRingCount(ushort id) => id < _chainCount.Length ? _chainCount[id] : (ushort)0;

    /// <inheritdoc/>
    public override void AddUsed(ushort head, uint length)
    {
        ThrowIfNotReady();
        ushort size = Size;
        if (head >= size || _chainCount[head] == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(head), head, "the buffer id is not in flight");
        }

        ushort count = _chainCount[head];
        FreeEntries(_chainFirst[head], count);
        _chainCount[head] = 0;
        ushort slot = _nextUsed;

        // SAFETY: slot < size, inside DescriptorTable.
        PackedDescriptor* d = (PackedDescriptor*)DescriptorTable + slot;
        d->Length = length;
        d->Id = head;
        ushort flags = _usedWrap ? (ushort)(VirtqDescriptorFlags.Available | VirtqDescriptorFlags.Used) : (ushort)0;

        Volatile.Write(ref *(ushort*)&d->Flags, flags);

        // Logged after the store that hands the descriptor back (see LogDeviceAreaWrite).
        LogDescriptorWrite((ulong)slot * PackedDescriptor.Size, PackedDescriptor.Size);
        int next = slot + count;
        if (next >= size)
        {
            next -= size;
            _usedWrap = !_usedWrap;
        }

        _nextUsed = (ushort)next;
        _usedSinceSignal = Math.Min(_usedSinceSignal + count, ushort.MaxValue);
    }

    /// <inheritdoc/>
    public override bool NeedsNotification()
    {
        ThrowIfNotReady();
        Interlocked.MemoryBarrier();

        // SAFETY: DriverArea covers the 4-byte driver event suppression structure.
        var suppression = (PackedEventSuppression*)DriverArea;
        var flags = (PackedEventFlags)Volatile.Read(ref *(ushort*)&suppression->Flags);
        ushort offsetAndWrap = Volatile.Read(ref suppression->OffsetAndWrap);
        ushort old = (ushort)(_nextUsed - _usedSinceSignal);
        bool valid = _signalledUsedValid;
        _usedSinceSignal = 0;
        _signalledUsedValid = true;
        return flags switch
        {
            PackedEventFlags.Disable => false,
            PackedEventFlags.Descriptor when EventIdx => !valid || NeedEvent(offsetAndWrap, _nextUsed, old, _usedWrap, Size),
            _ => true,
        };
    }

    /// <inheritdoc/>
    public override bool EnableNotification()
    {
        ThrowIfNotReady();

        // SAFETY: DeviceArea covers the 4-byte device event suppression structure.
        var suppression = (PackedEventSuppression*)DeviceArea;
        if (EventIdx)
        {
            Volatile.Write(ref suppression->OffsetAndWrap, (ushort)(_nextAvail | (_availWrap ? WrapBit : 0)));
            Volatile.Write(ref *(ushort*)&suppression->Flags, (ushort)PackedEventFlags.Descriptor);
        }
        else
        {
            Volatile.Write(ref *(ushort*)&suppression->Flags, (ushort)PackedEventFlags.Enable);
        }

        LogDeviceAreaWrite(0, PackedEventSuppression.Size);
        Interlocked.MemoryBarrier();

        // SAFETY: _nextAvail < Size, inside DescriptorTable.
        PackedDescriptor* d = (PackedDescriptor*)DescriptorTable + _nextAvail;
        return IsAvailable((VirtqDescriptorFlags)Volatile.Read(ref *(ushort*)&d->Flags), _availWrap);
    }

    /// <inheritdoc/>
    public override void DisableNotification()
    {
        ThrowIfNotReady();

        // SAFETY: DeviceArea covers the device event suppression structure.
        var suppression = (PackedEventSuppression*)DeviceArea;
        Volatile.Write(ref *(ushort*)&suppression->Flags, (ushort)PackedEventFlags.Disable);
        LogDeviceAreaWrite(0, PackedEventSuppression.Size);
    }

    /// <inheritdoc/>
    public override uint GetVringBase()
        => (uint)(_nextAvail & 0x7fff) | (_availWrap ? 1u << 15 : 0) | ((uint)(_nextUsed & 0x7fff) << 16) | (_usedWrap ? 1u << 31 : 0);

    /// <inheritdoc/>
    public override void SetVringBase(uint value)
    {
        ThrowIfReady();
        ushort avail = (ushort)(value & 0x7fff);
        ushort used = (ushort)((value >> 16) & 0x7fff);
        if (avail >= Size || used >= Size)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"ring positions avail {avail} / used {used} must be below the queue size {Size}");
        }

        _storeValid = false;
        _nextAvail = avail;
        _availWrap = (value & (1u << 15)) != 0;
        _nextUsed = used;
        _usedWrap = (value & (1u << 31)) != 0;
        _signalledUsedValid = false;
    }

    /// <summary>The copied descriptors of an in-flight chain, for the enumerator.</summary>
    /// <inheritdoc/>
    internal override bool TryGetSingleBuffer(in DescriptorChain chain, out VirtqBuffer buffer)
    {
        ThrowIfNotReady();
        if (!TryGetChainStore(chain.Head, chain.Stamp, chain.First, out PackedDescriptor[] store, out _) || (uint)chain.First >= (uint)store.Length)
        {
            throw StaleChain(chain.Head);
        }

        // The chain's descriptors were copied out of the ring when it was popped.
        PackedDescriptor d = store[chain.First];
        if (chain.RingCount != 1 || (d.Flags & VirtqDescriptorFlags.Indirect) != 0)
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
        if (IsReady && memory is not null && Iotlb is null && chain.Queue == this
            && TryGetChainStore(chain.Head, chain.Stamp, chain.First, out PackedDescriptor[] store, out _)
            && (uint)chain.First < (uint)store.Length)
        {
            // The chain's descriptors were copied out of the ring when it was popped.
            memory.Prefetch(store[chain.First].Address);
        }
    }

    internal bool TryGetChainStore(ushort id, int serial, int first, out PackedDescriptor[] store, out int[] next)
    {
        store = _store;
        next = _storeNext;
        return id < _chainCount.Length && _chainCount[id] != 0 && _chainSerial[id] == (uint)serial && _chainFirst[id] == first;
    }

    /// <inheritdoc/>
    private protected override bool IsValidSize(ushort size) => true;

    /// <inheritdoc/>
    private protected override void GetAreaLayout(out ulong driverAreaSize, out ulong driverAreaAlignment, out ulong deviceAreaSize, out ulong deviceAreaAlignment)
    {
        driverAreaSize = PackedEventSuppression.Size;
        driverAreaAlignment = 4;
        deviceAreaSize = PackedEventSuppression.Size;
        deviceAreaAlignment = 4;
    }

    /// <inheritdoc/>
    private protected override void OnActivated()
    {
        int size = Size;
        if (_nextAvail >= size || _nextUsed >= size)
        {
            throw new VirtqueueException(VirtqueueError.InvalidQueueSize, $"ring positions avail {_nextAvail} / used {_nextUsed} are not below the queue size {size}");
        }

        // Re-activated at the same position (the ring's memory went away and came back, or moved):
        // the chains in flight stay in flight, so their completions can still be added.
        if (_storeValid && _store.Length == size)
        {
            return;
        }

        if (_store.Length != size)
        {
            _store = new PackedDescriptor[size];
            _storeNext = new int[size];
            _chainFirst = new int[size];
            _chainCount = new ushort[size];
            _chainSerial = new uint[size];
        }

        Array.Clear(_chainCount);
        for (int i = 0; i < size; i++)
        {
            _storeNext[i] = i + 1 < size ? i + 1 : -1;
        }

        _freeHead = 0;
        _storeValid = true;
    }

    /// <inheritdoc/>
    internal override void DiscardInFlight() => _storeValid = false;

    /// <inheritdoc/>
    private protected override void ResetIndices()
    {
        _storeValid = false;
        _nextAvail = 0;
        _availWrap = true;
        _nextUsed = 0;
        _usedWrap = true;
        _usedSinceSignal = 0;
        _signalledUsedValid = false;
    }

    /// <summary>Takes a free store entry and links it after <paramref name="previous"/> (or makes it the chain's <paramref name="first"/>); -1 when the store is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int TakeEntry(ref int first, int previous)
    {
        int entry = _freeHead;
        if (entry < 0)
        {
            return -1;
        }

        _freeHead = _storeNext[entry];
        _storeNext[entry] = -1;
        if (previous < 0)
        {
            first = entry;
        }
        else
        {
            _storeNext[previous] = entry;
        }

        return entry;
    }

    private static VirtqueueException TooManyInFlight(ushort size) => new(VirtqueueError.TooManyInFlight, $"more than {size} descriptors are in flight");

    private void FreeEntries(int first, int count)
    {
        int entry = first;
        for (int i = 0; i < count && entry >= 0; i++)
        {
            int following = _storeNext[entry];
            _storeNext[entry] = _freeHead;
            _freeHead = entry;
            entry = following;
        }
    }
}
