using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using VhostUserBackend.Iommu;
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
/// <remarks>
/// With VIRTIO_F_ACCESS_PLATFORM (the queue has an <see cref="Virtqueue.Iotlb"/>) descriptor and
/// indirect table addresses are IOVAs: each buffer is translated as it is reached, with the
/// permission its direction needs (read for device-readable, write for device-writable), and
/// comes out as one <see cref="VirtqBuffer"/> per guest-contiguous piece. A miss waits for the
/// front-end (bounded); a failed translation throws like any other invalid descriptor.
/// </remarks>
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
    private readonly Iotlb? _iotlb;
    private bool _tableThroughIotlb;
    private ulong _pieceIova;
    private ulong _pieceLeft;
    private bool _pieceWritable;

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
        _iotlb = queue.Iotlb;
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

        if (_pieceLeft != 0)
        {
            // The rest of a descriptor whose IOVAs continue elsewhere in guest memory.
            _current = NextPiece();
            return true;
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
                VirtqDescriptor copy;
                if (_table == null)
                {
                    ulong entryAddress = _tableAddress + ((ulong)_next * VirtqDescriptor.Size);
                    if (_tableThroughIotlb)
                    {
                        _iotlb!.Read(_memory, entryAddress, new Span<byte>(&copy, VirtqDescriptor.Size));
                    }
                    else
                    {
                        copy = _memory.Read<VirtqDescriptor>(entryAddress);
                    }

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

            if (_iotlb is null)
            {
                Virtqueue.CheckBuffer(_memory, address, length);
            }
            else if (length != 0 && address > ulong.MaxValue - (length - 1))
            {
                Throw(VirtqueueError.BufferAddressOverflow, $"buffer IOVA 0x{address:x} + 0x{length:x} wraps past 2^64");
            }

            bool writable = (flags & VirtqDescriptorFlags.Write) != 0;
            if (!writable && _seenWritable)
            {
                Throw(VirtqueueError.ReadableAfterWritable, "a device-readable descriptor follows a device-writable one");
            }

            _seenWritable |= writable;
            if (_iotlb is not null && length != 0)
            {
                _pieceIova = address;
                _pieceLeft = length;
                _pieceWritable = writable;
                _current = NextPiece();
                return true;
            }

            _current = new VirtqBuffer(address, length, writable);
            return true;
        }

        return false;
    }

    /// <summary>The next guest-contiguous piece of the descriptor being translated.</summary>
    private VirtqBuffer NextPiece()
    {
        ulong gpa = _iotlb!.Translate(_memory, _pieceIova, _pieceLeft, _pieceWritable, out ulong run);
        _pieceIova = unchecked(_pieceIova + run);
        _pieceLeft -= run;
        return new VirtqBuffer(gpa, (uint)run, _pieceWritable);
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

        bool throughIotlb = false;
        if (_iotlb is not null)
        {
            if (address > ulong.MaxValue - (length - 1))
            {
                Throw(VirtqueueError.IndirectTableNotMapped, $"indirect table IOVA 0x{address:x} + 0x{length:x} wraps past 2^64");
            }

            // Translated as a whole when its IOVAs are contiguous in guest memory; otherwise its
            // entries are copied through the IOTLB one at a time (the address stays an IOVA).
            ulong gpa = _iotlb.Translate(_memory, address, length, write: false, out ulong run);
            throughIotlb = run != length;
            address = throughIotlb ? address : gpa;
        }

        // One region: read in place. Across adjacent regions (valid guest memory, not one host
        // mapping): entries are copied through the snapshot one at a time.
        byte* table = throughIotlb ? null : _memory.TryGetPointer(address, length);
        if (!throughIotlb && table == null && (address > ulong.MaxValue - (length - 1) || !_memory.IsRangeMapped(address, length)))
        {
            Throw(VirtqueueError.IndirectTableNotMapped, $"indirect table [0x{address:x}, +0x{length:x}) is not inside guest memory");
        }

        _tableThroughIotlb = throughIotlb;
        _table = table;
        _tableAddress = address;
        _tableLength = length / VirtqDescriptor.Size;
        _inIndirect = true;
        _next = 0;
        _visited = 0;
        _hasNext = true;
    }
}
