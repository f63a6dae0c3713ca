using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// Walks a <see cref="DescriptorChain"/> without allocating. Each descriptor is copied out of
/// guest memory once, then the copy is validated: indices inside their table, no loop, the
/// chain no longer than the queue size, indirect tables well formed (negotiated, not nested,
/// no NEXT flag, length a non-zero multiple of 16, inside guest memory: in one region, or across
/// adjacent ones), buffers entirely inside guest memory without wrapping, and no readable buffer
/// after a writable one. The WRITE flag of a descriptor that refers to an indirect table is
/// ignored, as the virtio spec requires of the device (the device requirements of "Indirect
/// Descriptors", split and packed).
/// </summary>
public unsafe struct DescriptorChainEnumerator
{
    private const uint MaxIndirectEntries = 65536;

    private readonly Virtqueue _queue;
    private readonly int _generation;
    private readonly GuestMemory _memory;
    private readonly byte* _ring;
    private readonly uint _queueSize;
    private readonly bool _allowIndirect;
    private readonly bool _packed;
    private readonly PackedDescriptor[]? _store;
    private readonly int[]? _storeNext;
    private int _storeEntry;
    private uint _ringRemaining;
    private byte* _table;
    private ulong _tableAddress;
    private uint _tableLength;
    private bool _inIndirect;
    private uint _next;
    private bool _hasNext;
    private uint _visited;
    private uint _total;
    private bool _seenWritable;
    private VirtqBuffer _current;

    internal DescriptorChainEnumerator(Virtqueue queue, in DescriptorChain chain)
    {
        if (!queue.IsReady)
        {
            throw new InvalidOperationException("the virtqueue is not ready");
        }

        this = default;
        _queue = queue;
        _generation = queue.Generation;
        _memory = queue.Memory;
        _ring = queue.DescriptorTable;
        _queueSize = queue.Size;
        _allowIndirect = queue.IndirectDescriptors;
        _hasNext = true;
        if (queue is PackedQueue packed)
        {
            _packed = true;
            if (!packed.TryGetChainStore(chain.Head, chain.Stamp, chain.First, out _store, out _storeNext))
            {
                ThrowStale(chain.Head);
            }

            _storeEntry = chain.First;
            _ringRemaining = chain.RingCount;
        }
        else
        {
            if (queue.Generation != chain.Stamp)
            {
                ThrowStale(chain.Head);
            }

            _next = chain.Head;
        }
    }

    /// <summary>The current buffer.</summary>
    public readonly VirtqBuffer Current => _current;

    /// <summary>Advances to the next buffer.</summary>
    /// <returns>False at the end of the chain.</returns>
    /// <exception cref="VirtqueueException">The next descriptor is invalid (the reason says how).</exception>
    public bool MoveNext()
    {
        // The pointers below stay valid only while the queue keeps the memory snapshot it had
        // when enumeration started (UpdateMemory or Deactivate may release it).
        if (_queue.Generation != _generation)
        {
            Throw(VirtqueueError.StaleChain, "the queue's memory or state changed during enumeration");
        }

        while (_hasNext)
        {
            ulong address;
            uint length;
            VirtqDescriptorFlags flags;
            if (_inIndirect)
            {
                if (_next >= _tableLength)
                {
                    Throw(VirtqueueError.NextIndexOutOfRange, $"indirect descriptor index {_next} is outside the table of {_tableLength}");
                }

                if (++_visited > _tableLength)
                {
                    Throw(VirtqueueError.DescriptorLoop, "the indirect table's chain loops");
                }

                // SAFETY: _next < _tableLength and the table's _tableLength * 16 bytes were checked
                // to lie in one region of the memory snapshot the queue holds. A table across
                // regions (_table null) is copied entry by entry through the snapshot.
                byte* entry = _table + ((nuint)_next * VirtqDescriptor.Size);
                if (_table == null)
                {
                    VirtqDescriptor copy = _memory.Read<VirtqDescriptor>(_tableAddress + ((ulong)_next * VirtqDescriptor.Size));
                    entry = (byte*)&copy;
                }

                if (_packed)
                {
                    PackedDescriptor d = Unsafe.ReadUnaligned<PackedDescriptor>(entry);
                    (address, length, flags) = (d.Address, d.Length, d.Flags);
                    _next++;
                    _hasNext = _next < _tableLength;
                }
                else
                {
                    VirtqDescriptor d = Unsafe.ReadUnaligned<VirtqDescriptor>(entry);
                    (address, length, flags) = (d.Address, d.Length, d.Flags);
                    _hasNext = (flags & VirtqDescriptorFlags.Next) != 0;
                    _next = d.Next;
                }

                if ((flags & VirtqDescriptorFlags.Indirect) != 0)
                {
                    Throw(VirtqueueError.NestedIndirect, "an indirect table contains an indirect descriptor");
                }
            }
            else if (_packed)
            {
                PackedDescriptor d = _store![_storeEntry];
                (address, length, flags) = (d.Address, d.Length, d.Flags);
                _storeEntry = _storeNext![_storeEntry];
                _hasNext = --_ringRemaining > 0;
            }
            else
            {
                if (_next >= _queueSize)
                {
                    Throw(VirtqueueError.NextIndexOutOfRange, $"descriptor index {_next} is outside the table of {_queueSize}");
                }

                if (++_visited > _queueSize)
                {
                    Throw(VirtqueueError.DescriptorLoop, "the descriptor chain loops");
                }

                // SAFETY: _next < queue size and the descriptor table (size * 16 bytes) lies in one
                // region of the memory snapshot the queue holds.
                VirtqDescriptor d = Unsafe.ReadUnaligned<VirtqDescriptor>(_ring + ((nuint)_next * VirtqDescriptor.Size));
                (address, length, flags) = (d.Address, d.Length, d.Flags);
                _hasNext = (flags & VirtqDescriptorFlags.Next) != 0;
                _next = d.Next;
            }

            if ((flags & VirtqDescriptorFlags.Indirect) != 0)
            {
                EnterIndirect(address, length, flags);
                continue;
            }

            if (++_total > _queueSize)
            {
                Throw(VirtqueueError.ChainTooLong, $"the chain has more than {_queueSize} descriptors");
            }

            Virtqueue.CheckBuffer(_memory, address, length);

            bool writable = (flags & VirtqDescriptorFlags.Write) != 0;
            if (!writable && _seenWritable)
            {
                Throw(VirtqueueError.ReadableAfterWritable, "a device-readable descriptor follows a device-writable one");
            }

            _seenWritable |= writable;
            _current = new VirtqBuffer(address, length, writable);
            return true;
        }

        return false;
    }

    [DoesNotReturn]
    private static void Throw(VirtqueueError reason, string message) => throw new VirtqueueException(reason, message);

    [DoesNotReturn]
    private static void ThrowStale(ushort head) => throw Virtqueue.StaleChain(head);

    private void EnterIndirect(ulong address, uint length, VirtqDescriptorFlags flags)
    {
        if (!_allowIndirect)
        {
            Throw(VirtqueueError.IndirectNotNegotiated, "an indirect descriptor, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated");
        }

        // The WRITE flag of the descriptor that refers to the table is ignored (the spec: "The
        // device MUST ignore the write-only flag ... in the descriptor that refers to an indirect table").
        if ((flags & VirtqDescriptorFlags.Next) != 0)
        {
            Throw(VirtqueueError.IndirectWithNextFlag, "an indirect descriptor has the NEXT flag");
        }

        if (length == 0 || length % VirtqDescriptor.Size != 0 || length / VirtqDescriptor.Size > MaxIndirectEntries)
        {
            Throw(VirtqueueError.InvalidIndirectTableLength, $"indirect table length {length} is not a non-zero multiple of 16 of at most {MaxIndirectEntries} entries");
        }

        // One region: read in place. Across adjacent regions (valid guest memory, not one host
        // mapping): entries are copied through the snapshot one at a time.
        byte* table = _memory.TryGetPointer(address, length);
        if (table == null && (address > ulong.MaxValue - (length - 1) || !_memory.IsRangeMapped(address, length)))
        {
            Throw(VirtqueueError.IndirectTableNotMapped, $"indirect table [0x{address:x}, +0x{length:x}) is not inside guest memory");
        }

        _table = table;
        _tableAddress = address;
        _tableLength = length / VirtqDescriptor.Size;
        _inIndirect = true;
        _next = 0;
        _visited = 0;
        _hasNext = true;
    }
}
