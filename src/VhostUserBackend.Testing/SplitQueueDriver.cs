using System.Runtime.CompilerServices;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Testing;

/// <summary>
/// The guest-driver side of a split virtqueue, laid out in <see cref="GuestRam"/>: adds buffer
/// chains (direct or through an indirect table) the way a virtio driver does, publishes
/// <c>avail.idx</c>, decides on kicks, reads completions and asks for interrupts (with or
/// without EVENT_IDX). Allocation-free after construction. Not thread-safe.
/// </summary>
public sealed unsafe class SplitQueueDriver
{
    private const int RingHeader = 4;
    private readonly GuestRam _ram;
    private readonly byte* _desc;
    private readonly byte* _avail;
    private readonly byte* _used;
    private readonly ushort[] _descNext;
    private readonly ushort[] _chainLength;
    private readonly int _maxIndirect;
    private readonly ulong _indirectBase;
    private ushort _freeHead;
    private int _numFree;
    private ushort _availIdx;
    private ushort _kickOld;
    private ushort _lastUsed;

    /// <summary>Lays out a ring of <paramref name="size"/> entries in <paramref name="ram"/>.</summary>
    /// <param name="ram">The guest RAM (rings and indirect tables are allocated from it).</param>
    /// <param name="size">Queue size (a power of two).</param>
    /// <param name="eventIdx">Whether VIRTIO_RING_F_EVENT_IDX is negotiated.</param>
    /// <param name="maxIndirectEntries">Entries per indirect table (0: no indirect support).</param>
    public SplitQueueDriver(GuestRam ram, ushort size, bool eventIdx = false, int maxIndirectEntries = 0)
    {
        ArgumentNullException.ThrowIfNull(ram);
        if (size == 0 || !ushort.IsPow2(size) || size > Virtqueue.MaxQueueSizeLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "a split queue size is a power of two up to 32768");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(maxIndirectEntries);
        _ram = ram;
        Size = size;
        EventIdx = eventIdx;
        DescriptorTableAddress = ram.Allocate((ulong)size * VirtqDescriptor.Size, 16);
        AvailRingAddress = ram.Allocate(SplitQueue.AvailRingSize(size), 2);
        UsedRingAddress = ram.Allocate(SplitQueue.UsedRingSize(size), 4);
        _desc = ram.PointerOf(DescriptorTableAddress, (ulong)size * VirtqDescriptor.Size);
        _avail = ram.PointerOf(AvailRingAddress, SplitQueue.AvailRingSize(size));
        _used = ram.PointerOf(UsedRingAddress, SplitQueue.UsedRingSize(size));
        _maxIndirect = maxIndirectEntries;
        if (maxIndirectEntries > 0)
        {
            _indirectBase = ram.Allocate((ulong)size * (ulong)maxIndirectEntries * VirtqDescriptor.Size, 16);
        }

        _descNext = new ushort[size];
        _chainLength = new ushort[size];
        for (int i = 0; i < size; i++)
        {
            _descNext[i] = (ushort)(i + 1);
        }

        _numFree = size;
    }

    /// <summary>The queue size.</summary>
    public ushort Size { get; }

    /// <summary>Whether EVENT_IDX is in use.</summary>
    public bool EventIdx { get; }

    /// <summary>Guest physical address of the descriptor table.</summary>
    public ulong DescriptorTableAddress { get; }

    /// <summary>Guest physical address of the available ring (driver area).</summary>
    public ulong AvailRingAddress { get; }

    /// <summary>Guest physical address of the used ring (device area).</summary>
    public ulong UsedRingAddress { get; }

    /// <summary>Free descriptors.</summary>
    public int FreeDescriptors => _numFree;

    /// <summary>The next avail index (published or not).</summary>
    public ushort AvailIndex => _availIdx;

    /// <summary>The used index up to which completions were read.</summary>
    public ushort LastUsedIndex => _lastUsed;

    /// <summary>The device's <c>used.idx</c>.</summary>
    public ushort DeviceUsedIndex => Volatile.Read(ref *(ushort*)(_used + 2));

    /// <summary>The <c>used_event</c> field (driver → device, EVENT_IDX).</summary>
    public ushort UsedEvent
    {
        get => Volatile.Read(ref *(ushort*)(_avail + RingHeader + (2 * Size)));
        set => Volatile.Write(ref *(ushort*)(_avail + RingHeader + (2 * Size)), value);
    }

    /// <summary>The <c>avail_event</c> field (device → driver, EVENT_IDX).</summary>
    public ushort AvailEvent => Volatile.Read(ref *(ushort*)(_used + RingHeader + (VirtqUsedElement.Size * Size)));

    /// <summary>Configures <paramref name="queue"/> with this ring's size, addresses and features (not activated).</summary>
    /// <param name="queue">The device queue.</param>
    public void Configure(SplitQueue queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        queue.Size = Size;
        queue.DescriptorTableAddress = DescriptorTableAddress;
        queue.DriverAreaAddress = AvailRingAddress;
        queue.DeviceAreaAddress = UsedRingAddress;
        queue.EventIdx = EventIdx;
        queue.IndirectDescriptors = _maxIndirect > 0;
    }

    /// <summary>Whether a chain of <paramref name="buffers"/> buffers fits now.</summary>
    /// <param name="buffers">Number of buffers.</param>
    /// <param name="indirect">Whether it would go through an indirect table.</param>
    /// <returns>True when <see cref="AddBuffers"/> would succeed.</returns>
    public bool CanAdd(int buffers, bool indirect = false)
        => buffers > 0 && buffers <= Size && (indirect ? _numFree >= 1 && buffers <= _maxIndirect : _numFree >= buffers);

    /// <summary>Writes a chain and its avail ring entry (not yet visible: call <see cref="Publish"/>).</summary>
    /// <param name="buffers">The buffers, device-readable first.</param>
    /// <param name="indirect">Put the chain in an indirect table.</param>
    /// <returns>The head descriptor index.</returns>
    /// <exception cref="InvalidOperationException">Not enough free descriptors, or too many buffers for an indirect table.</exception>
    public ushort AddBuffers(ReadOnlySpan<VirtqBuffer> buffers, bool indirect = false)
    {
        if (!CanAdd(buffers.Length, indirect))
        {
            throw new InvalidOperationException($"no room for a chain of {buffers.Length} buffers (free {_numFree}, indirect {indirect})");
        }

        ushort head = _freeHead;
        if (indirect)
        {
            _freeHead = _descNext[head];
            _numFree--;
            ulong table = _indirectBase + ((ulong)head * (ulong)_maxIndirect * VirtqDescriptor.Size);
            byte* t = _ram.PointerOf(table, (ulong)buffers.Length * VirtqDescriptor.Size);
            for (int i = 0; i < buffers.Length; i++)
            {
                Unsafe.WriteUnaligned(t + (i * VirtqDescriptor.Size), Descriptor(buffers[i], i + 1 < buffers.Length, (ushort)(i + 1)));
            }

            WriteDescriptor(head, new VirtqDescriptor { Address = table, Length = (uint)(buffers.Length * VirtqDescriptor.Size), Flags = VirtqDescriptorFlags.Indirect });
            _chainLength[head] = 1;
        }
        else
        {
            ushort index = head;
            for (int i = 0; i < buffers.Length; i++)
            {
                ushort next = _descNext[index];
                bool more = i + 1 < buffers.Length;
                WriteDescriptor(index, Descriptor(buffers[i], more, next));
                if (more)
                {
                    index = next;
                }
                else
                {
                    _freeHead = next;
                }
            }

            _numFree -= buffers.Length;
            _chainLength[head] = (ushort)buffers.Length;
        }

        WriteAvailEntry((ushort)(_availIdx & (Size - 1)), head);
        _availIdx++;
        return head;
    }

    /// <summary>Makes the added chains visible: release-writes <c>avail.idx</c>.</summary>
    public void Publish() => Volatile.Write(ref *(ushort*)(_avail + 2), _availIdx);

    /// <summary>Whether the device wants a kick for the chains published since the last call (full fence, then NO_NOTIFY or avail_event).</summary>
    /// <returns>True when the driver should notify.</returns>
    public bool NeedsKick()
    {
        Interlocked.MemoryBarrier();
        ushort published = Volatile.Read(ref *(ushort*)(_avail + 2));
        ushort old = _kickOld;
        _kickOld = published;
        if (EventIdx)
        {
            return SplitQueue.NeedEvent(AvailEvent, published, old);
        }

        return (Volatile.Read(ref *(ushort*)_used) & (ushort)VirtqUsedFlags.NoNotify) == 0;
    }

    /// <summary>Reads the next completion and frees its descriptors.</summary>
    /// <param name="head">The completed chain's head.</param>
    /// <param name="length">The bytes the device reports written.</param>
    /// <returns>False when there is none.</returns>
    /// <exception cref="InvalidOperationException">The device returned a head that is not in flight.</exception>
    public bool TryGetUsed(out ushort head, out uint length)
    {
        ushort usedIdx = Volatile.Read(ref *(ushort*)(_used + 2));
        if (usedIdx == _lastUsed)
        {
            head = 0;
            length = 0;
            return false;
        }

        VirtqUsedElement e = Unsafe.ReadUnaligned<VirtqUsedElement>(_used + RingHeader + (VirtqUsedElement.Size * (_lastUsed & (Size - 1))));
        _lastUsed++;
        if (e.Id >= Size || _chainLength[e.Id] == 0)
        {
            throw new InvalidOperationException($"the device returned head {e.Id}, which is not in flight");
        }

        head = (ushort)e.Id;
        length = e.Length;
        int count = _chainLength[head];
        _chainLength[head] = 0;
        ushort last = head;
        for (int i = 1; i < count; i++)
        {
            last = _descNext[last];
        }

        _descNext[last] = _freeHead;
        _freeHead = head;
        _numFree += count;
        return true;
    }

    /// <summary>Asks for an interrupt at the next completion (clears NO_INTERRUPT, or sets used_event to the next used index).</summary>
    /// <returns>True when completions are already pending (read them before sleeping).</returns>
    public bool EnableInterrupts()
    {
        if (EventIdx)
        {
            UsedEvent = _lastUsed;
        }
        else
        {
            Volatile.Write(ref *(ushort*)_avail, (ushort)VirtqAvailFlags.None);
        }

        Interlocked.MemoryBarrier();
        return DeviceUsedIndex != _lastUsed;
    }

    /// <summary>Asks for no interrupts (sets NO_INTERRUPT; with EVENT_IDX, sets used_event just behind the last seen index so it is crossed only after a full lap).</summary>
    public void DisableInterrupts()
    {
        Volatile.Write(ref *(ushort*)_avail, (ushort)VirtqAvailFlags.NoInterrupt);
        if (EventIdx)
        {
            UsedEvent = (ushort)(_lastUsed - 1);
        }
    }

    /// <summary>Raw write of a descriptor (hostile-guest tests).</summary>
    /// <param name="index">Descriptor index (below the size).</param>
    /// <param name="descriptor">The descriptor.</param>
    internal void WriteDescriptor(ushort index, in VirtqDescriptor descriptor)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Size);
        Unsafe.WriteUnaligned(_desc + (index * VirtqDescriptor.Size), descriptor);
    }

    /// <summary>Raw write of an available ring entry (hostile-guest tests).</summary>
    /// <param name="slot">Ring slot (below the size).</param>
    /// <param name="head">The head index to store (any value).</param>
    public void WriteAvailEntry(ushort slot, ushort head)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, Size);
        *(ushort*)(_avail + RingHeader + (2 * slot)) = head;
    }

    /// <summary>Raw release-write of <c>avail.idx</c> (hostile-guest tests); the driver's own next index follows it.</summary>
    /// <param name="value">The index.</param>
    public void SetAvailIndex(ushort value)
    {
        _availIdx = value;
        Volatile.Write(ref *(ushort*)(_avail + 2), value);
    }

    private static VirtqDescriptor Descriptor(in VirtqBuffer buffer, bool more, ushort next) => new()
    {
        Address = buffer.Address,
        Length = buffer.Length,
        Flags = (buffer.IsWriteOnly ? VirtqDescriptorFlags.Write : 0) | (more ? VirtqDescriptorFlags.Next : 0),
        Next = more ? next : (ushort)0,
    };
}
