using System.Runtime.CompilerServices;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Testing;

/// <summary>
/// The guest-driver side of a packed virtqueue, laid out in <see cref="GuestRam"/>: writes
/// chains with the avail/used bits of its wrap counter (head flags last, with release
/// semantics), decides on kicks from the device event suppression structure, reads used
/// descriptors (in or out of order) and sets the driver event suppression structure.
/// Allocation-free after construction. Not thread-safe.
/// </summary>
public sealed unsafe class PackedQueueDriver
{
    private const ushort WrapBit = 0x8000;
    private readonly GuestRam _ram;
    private readonly PackedDescriptor* _ring;
    private readonly PackedEventSuppression* _driverEvent;
    private readonly PackedEventSuppression* _deviceEvent;
    private readonly ushort[] _idNext;
    private readonly ushort[] _idCount;
    private readonly int _maxIndirect;
    private readonly ulong _indirectBase;
    private ushort _freeId;
    private int _numFree;
    private ushort _nextAvail;
    private bool _availWrap = true;
    private int _addedSinceKick;
    private ushort _lastUsed;
    private bool _usedWrap = true;

    /// <summary>Lays out a packed ring of <paramref name="size"/> descriptors in <paramref name="ram"/>.</summary>
    /// <param name="ram">The guest RAM.</param>
    /// <param name="size">Queue size (1..32768).</param>
    /// <param name="eventIdx">Whether VIRTIO_RING_F_EVENT_IDX is negotiated.</param>
    /// <param name="maxIndirectEntries">Entries per indirect table (0: no indirect support).</param>
    public PackedQueueDriver(GuestRam ram, ushort size, bool eventIdx = false, int maxIndirectEntries = 0)
    {
        ArgumentNullException.ThrowIfNull(ram);
        if (size == 0 || size > Virtqueue.MaxQueueSizeLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "a packed queue size is 1..32768");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(maxIndirectEntries);
        _ram = ram;
        Size = size;
        EventIdx = eventIdx;
        DescriptorRingAddress = ram.Allocate((ulong)size * PackedDescriptor.Size, 16);
        DriverEventAddress = ram.Allocate(PackedEventSuppression.Size, 4);
        DeviceEventAddress = ram.Allocate(PackedEventSuppression.Size, 4);
        _ring = (PackedDescriptor*)ram.PointerOf(DescriptorRingAddress, (ulong)size * PackedDescriptor.Size);
        _driverEvent = (PackedEventSuppression*)ram.PointerOf(DriverEventAddress, PackedEventSuppression.Size);
        _deviceEvent = (PackedEventSuppression*)ram.PointerOf(DeviceEventAddress, PackedEventSuppression.Size);
        _maxIndirect = maxIndirectEntries;
        if (maxIndirectEntries > 0)
        {
            _indirectBase = ram.Allocate((ulong)size * (ulong)maxIndirectEntries * PackedDescriptor.Size, 16);
        }

        _idNext = new ushort[size];
        _idCount = new ushort[size];
        for (int i = 0; i < size; i++)
        {
            _idNext[i] = (ushort)(i + 1);
        }

        _numFree = size;
    }

    /// <summary>The queue size.</summary>
    public ushort Size { get; }

    /// <summary>Whether EVENT_IDX is in use.</summary>
    public bool EventIdx { get; }

    /// <summary>Guest physical address of the descriptor ring.</summary>
    public ulong DescriptorRingAddress { get; }

    /// <summary>Guest physical address of the driver event suppression structure (driver area).</summary>
    public ulong DriverEventAddress { get; }

    /// <summary>Guest physical address of the device event suppression structure (device area).</summary>
    public ulong DeviceEventAddress { get; }

    /// <summary>Free ring slots.</summary>
    public int FreeDescriptors => _numFree;

    /// <summary>The next slot the driver writes.</summary>
    public ushort NextAvail => _nextAvail;

    /// <summary>The driver's avail wrap counter.</summary>
    public bool AvailWrapCounter => _availWrap;

    /// <summary>The next slot the driver reads a used descriptor from.</summary>
    public ushort LastUsed => _lastUsed;

    /// <summary>The driver's used wrap counter.</summary>
    public bool UsedWrapCounter => _usedWrap;

    /// <summary>The driver event suppression structure (driver → device).</summary>
    internal PackedEventSuppression DriverEvent
    {
        get => new() { OffsetAndWrap = Volatile.Read(ref _driverEvent->OffsetAndWrap), Flags = (PackedEventFlags)Volatile.Read(ref *(ushort*)&_driverEvent->Flags) };
        set
        {
            Volatile.Write(ref _driverEvent->OffsetAndWrap, value.OffsetAndWrap);
            Volatile.Write(ref *(ushort*)&_driverEvent->Flags, (ushort)value.Flags);
        }
    }

    /// <summary>The device event suppression structure (device → driver).</summary>
    internal PackedEventSuppression DeviceEvent
        => new() { OffsetAndWrap = Volatile.Read(ref _deviceEvent->OffsetAndWrap), Flags = (PackedEventFlags)Volatile.Read(ref *(ushort*)&_deviceEvent->Flags) };

    /// <summary>Configures <paramref name="queue"/> with this ring's size, addresses and features (not activated).</summary>
    /// <param name="queue">The device queue.</param>
    public void Configure(PackedQueue queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        queue.Size = Size;
        queue.DescriptorTableAddress = DescriptorRingAddress;
        queue.DriverAreaAddress = DriverEventAddress;
        queue.DeviceAreaAddress = DeviceEventAddress;
        queue.EventIdx = EventIdx;
        queue.IndirectDescriptors = _maxIndirect > 0;
    }

    /// <summary>Whether a chain of <paramref name="buffers"/> buffers fits now.</summary>
    /// <param name="buffers">Number of buffers.</param>
    /// <param name="indirect">Whether it would go through an indirect table.</param>
    /// <returns>True when <see cref="AddBuffers"/> would succeed.</returns>
    public bool CanAdd(int buffers, bool indirect = false)
        => buffers > 0 && buffers <= Size && _freeId < Size && (indirect ? _numFree >= 1 && buffers <= _maxIndirect : _numFree >= buffers);

    /// <summary>Writes a chain and makes it available (the head's flags are release-written last).</summary>
    /// <param name="buffers">The buffers, device-readable first.</param>
    /// <param name="indirect">Put the chain in an indirect table.</param>
    /// <returns>The buffer id.</returns>
    /// <exception cref="InvalidOperationException">No room.</exception>
    public ushort AddBuffers(ReadOnlySpan<VirtqBuffer> buffers, bool indirect = false)
    {
        if (!CanAdd(buffers.Length, indirect))
        {
            throw new InvalidOperationException($"no room for a chain of {buffers.Length} buffers (free {_numFree}, indirect {indirect})");
        }

        ushort id = _freeId;
        _freeId = _idNext[id];
        ushort headSlot = _nextAvail;
        VirtqDescriptorFlags headFlags;
        ushort slots;
        if (indirect)
        {
            ulong table = _indirectBase + ((ulong)id * (ulong)_maxIndirect * PackedDescriptor.Size);
            var t = (PackedDescriptor*)_ram.PointerOf(table, (ulong)buffers.Length * PackedDescriptor.Size);
            for (int i = 0; i < buffers.Length; i++)
            {
                t[i] = new PackedDescriptor
                {
                    Address = buffers[i].Address,
                    Length = buffers[i].Length,
                    Id = 0,
                    Flags = buffers[i].IsWriteOnly ? VirtqDescriptorFlags.Write : 0,
                };
            }

            headFlags = VirtqDescriptorFlags.Indirect | AvailBits(_availWrap);
            WriteSlot(headSlot, table, (uint)(buffers.Length * PackedDescriptor.Size), id);
            Advance();
            slots = 1;
        }
        else
        {
            headFlags = 0;
            for (int i = 0; i < buffers.Length; i++)
            {
                VirtqDescriptorFlags flags = (buffers[i].IsWriteOnly ? VirtqDescriptorFlags.Write : 0)
                    | (i + 1 < buffers.Length ? VirtqDescriptorFlags.Next : 0)
                    | AvailBits(_availWrap);
                WriteSlot(_nextAvail, buffers[i].Address, buffers[i].Length, id);
                if (i == 0)
                {
                    headFlags = flags;
                }
                else
                {
                    _ring[_nextAvail].Flags = flags;
                }

                Advance();
            }

            slots = (ushort)buffers.Length;
        }

        _idCount[id] = slots;
        _numFree -= slots;
        _addedSinceKick = Math.Min(_addedSinceKick + slots, ushort.MaxValue);
        Volatile.Write(ref *(ushort*)&_ring[headSlot].Flags, (ushort)headFlags);
        return id;
    }

    /// <summary>Whether the device wants a kick for the chains added since the last call (full fence, then the device event suppression structure).</summary>
    /// <returns>True when the driver should notify.</returns>
    public bool NeedsKick()
    {
        Interlocked.MemoryBarrier();
        PackedEventSuppression e = DeviceEvent;
        ushort old = (ushort)(_nextAvail - _addedSinceKick);
        _addedSinceKick = 0;
        return e.Flags switch
        {
            PackedEventFlags.Disable => false,
            PackedEventFlags.Descriptor when EventIdx => PackedQueue.NeedEvent(e.OffsetAndWrap, _nextAvail, old, _availWrap, Size),
            _ => true,
        };
    }

    /// <summary>Reads the next used descriptor and frees its slots and id.</summary>
    /// <param name="id">The completed buffer id.</param>
    /// <param name="length">The bytes the device reports written.</param>
    /// <returns>False when there is none.</returns>
    /// <exception cref="InvalidOperationException">The device returned an id that is not in flight.</exception>
    public bool TryGetUsed(out ushort id, out uint length)
    {
        PackedDescriptor* d = _ring + _lastUsed;
        var flags = (VirtqDescriptorFlags)Volatile.Read(ref *(ushort*)&d->Flags);
        bool avail = (flags & VirtqDescriptorFlags.Available) != 0;
        bool used = (flags & VirtqDescriptorFlags.Used) != 0;
        if (avail != _usedWrap || used != _usedWrap)
        {
            id = 0;
            length = 0;
            return false;
        }

        id = d->Id;
        length = d->Length;
        if (id >= Size || _idCount[id] == 0)
        {
            throw new InvalidOperationException($"the device returned buffer id {id}, which is not in flight");
        }

        int count = _idCount[id];
        _idCount[id] = 0;
        _idNext[id] = _freeId;
        _freeId = id;
        _numFree += count;
        int next = _lastUsed + count;
        if (next >= Size)
        {
            next -= Size;
            _usedWrap = !_usedWrap;
        }

        _lastUsed = (ushort)next;
        return true;
    }

    /// <summary>Asks for an interrupt at the next used descriptor (ENABLE, or DESC at the next used slot with EVENT_IDX).</summary>
    /// <returns>True when a used descriptor is already pending.</returns>
    public bool EnableInterrupts()
    {
        DriverEvent = EventIdx
            ? new PackedEventSuppression { OffsetAndWrap = (ushort)(_lastUsed | (_usedWrap ? WrapBit : 0)), Flags = PackedEventFlags.Descriptor }
            : new PackedEventSuppression { Flags = PackedEventFlags.Enable };
        Interlocked.MemoryBarrier();
        var flags = (VirtqDescriptorFlags)Volatile.Read(ref *(ushort*)&_ring[_lastUsed].Flags);
        return ((flags & VirtqDescriptorFlags.Available) != 0) == _usedWrap && ((flags & VirtqDescriptorFlags.Used) != 0) == _usedWrap;
    }

    /// <summary>Asks for no interrupts (DISABLE).</summary>
    public void DisableInterrupts() => DriverEvent = new PackedEventSuppression { Flags = PackedEventFlags.Disable };

    /// <summary>Raw write of a ring descriptor, flags included (hostile-guest tests).</summary>
    /// <param name="slot">Ring slot (below the size).</param>
    /// <param name="descriptor">The descriptor.</param>
    internal void WriteDescriptor(ushort slot, in PackedDescriptor descriptor)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, Size);
        _ring[slot] = descriptor;
    }

    /// <summary>The avail/used flag bits that make a descriptor available for wrap counter <paramref name="wrap"/>.</summary>
    /// <param name="wrap">The driver's avail wrap counter.</param>
    /// <returns>AVAIL set and USED clear when wrap is 1; the reverse when 0.</returns>
    internal static VirtqDescriptorFlags AvailBits(bool wrap) => wrap ? VirtqDescriptorFlags.Available : VirtqDescriptorFlags.Used;

    private void WriteSlot(ushort slot, ulong address, uint length, ushort id)
    {
        PackedDescriptor* d = _ring + slot;
        d->Address = address;
        d->Length = length;
        d->Id = id;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Advance()
    {
        if (++_nextAvail == Size)
        {
            _nextAvail = 0;
            _availWrap = !_availWrap;
        }
    }
}
