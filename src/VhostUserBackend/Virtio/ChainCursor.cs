using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// The position of a <see cref="DescriptorChainReader"/> or <see cref="DescriptorChainWriter"/>
/// in one direction (device-readable or device-writable) of a chain's buffers.
/// </summary>
/// <remarks>
/// Creation walks the whole chain once (every descriptor validated by the enumerator), counts
/// the buffers of its direction, sums their lengths with overflow checks and keeps the first
/// <see cref="CachedBuffers"/> of them. Data moves through those copies, so the usual short chain is
/// never walked again and needs nothing from the queue after creation. A longer chain is walked
/// a second time, lazily, from the buffer after the cached ones; every descriptor is validated
/// again, and a walk that disagrees with the first one (the driver rewrote the chain) throws
/// <see cref="VirtqueueError.ChainChanged"/>. Every byte is copied through a pointer checked
/// against the chain's memory snapshot, one region at a time.
/// </remarks>
internal unsafe struct ChainCursor
{
    /// <summary>How many buffers of its direction a cursor keeps from the creation walk.</summary>
    internal const int CachedBuffers = 4;

    private readonly DescriptorChain _chain;
    private readonly GuestMemory _memory;
    private readonly bool _writable;
    private readonly int _before;
    private readonly int _count;
    private BufferCache _cache;
    private DescriptorChainEnumerator _walk;
    private bool _walking;
    private int _next;
    private ulong _address;
    private ulong _left;
    private ulong _remaining;
    private ulong _consumed;

    internal ChainCursor(in DescriptorChain chain, bool writable)
    {
        GuestMemory? memory = chain.MemoryOrNull;
        if (chain.Queue is null || memory is null)
        {
            throw new InvalidOperationException("a default DescriptorChain has no buffers");
        }

        this = default;
        _chain = chain;
        _memory = memory;
        _writable = writable;
        ulong total = 0;
        int before = 0;
        int count = 0;
        if (chain.TryGetSingleBuffer(out VirtqBuffer only))
        {
            if (only.IsWriteOnly == writable)
            {
                _cache[0] = only;
                count = 1;
                total = only.Length;
            }
            else
            {
                before = 1;
            }
        }
        else
        {
            foreach (VirtqBuffer b in chain)
            {
                if (b.IsWriteOnly != writable)
                {
                    // The writer's buffers come after every readable one; the reader's before every
                    // writable one. The walk goes on to the end all the same: it validates the whole
                    // chain (a readable buffer after a writable one throws).
                    before += count == 0 ? 1 : 0;
                    continue;
                }

                if (count < CachedBuffers)
                {
                    _cache[count] = b;
                }

                count++;
                if (total > ulong.MaxValue - b.Length)
                {
                    ThrowOverflow(chain.Head);
                }

                total += b.Length;
            }
        }

        if (writable && total > uint.MaxValue)
        {
            ThrowOverflow(chain.Head);
        }

        _before = writable ? before : 0;
        _count = count;
        _remaining = total;
    }

    /// <summary>The chain.</summary>
    internal readonly DescriptorChain Chain => _chain;

    /// <summary>The memory snapshot the chain's buffers are mapped in.</summary>
    internal readonly GuestMemory Memory => _memory;

    /// <summary>Bytes not consumed yet.</summary>
    internal readonly ulong Remaining => _remaining;

    /// <summary>Bytes consumed (copied, skipped or committed) so far.</summary>
    internal readonly ulong Consumed => _consumed;

    /// <summary>Copies guest bytes out, as many as fit and remain; returns the count.</summary>
    internal int CopyTo(Span<byte> destination)
    {
        int done = 0;
        while (done < destination.Length && _remaining != 0)
        {
            byte* p = Piece((ulong)(destination.Length - done), out ulong n);

            // SAFETY: Piece checked [p, +n) against one region of the chain's memory snapshot, which
            // stays mapped while the chain is in flight.
            new ReadOnlySpan<byte>(p, (int)n).CopyTo(destination[done..]);
            Advance(n);
            done += (int)n;
        }

        return done;
    }

    /// <summary>Copies bytes into guest memory, as many as fit, marking them dirty; returns the count.</summary>
    internal int CopyFrom(ReadOnlySpan<byte> source)
    {
        int done = 0;
        DirtyLog? log = _remaining == 0 ? null : _memory.DirtyLog;
        while (done < source.Length && _remaining != 0)
        {
            byte* p = Piece((ulong)(source.Length - done), out ulong n);

            // SAFETY: as in CopyTo.
            source.Slice(done, (int)n).CopyTo(new Span<byte>(p, (int)n));
            log?.MarkDirty(_address, n);
            Advance(n);
            done += (int)n;
        }

        return done;
    }

    /// <summary>Consumes <paramref name="count"/> bytes (at most <see cref="Remaining"/>), marking them dirty when asked.</summary>
    internal void Skip(ulong count, bool markDirty)
    {
        DirtyLog? log = markDirty && count != 0 ? _memory.DirtyLog : null;
        while (count != 0)
        {
            EnsureCurrent();
            ulong n = Math.Min(_left, count);
            log?.MarkDirty(_address, n);
            Advance(n);
            count -= n;
        }
    }

    /// <summary>The next contiguous piece (one buffer, one region, at most int.MaxValue bytes), not consumed.</summary>
    internal bool TryGetPiece(out byte* pointer, out int length)
    {
        if (_remaining == 0)
        {
            pointer = null;
            length = 0;
            return false;
        }

        pointer = Piece(int.MaxValue, out ulong n);
        length = (int)n;
        return true;
    }

    /// <summary>Describes up to <paramref name="maxBytes"/> of the next bytes as host ranges, without consuming them.</summary>
    internal readonly int GetIovecs(Span<Iovec> destination, ulong maxBytes, out ulong bytes)
    {
        ChainCursor probe = this;
        int count = 0;
        bytes = 0;
        while (probe._remaining != 0 && bytes < maxBytes)
        {
            byte* p = probe.Piece(maxBytes - bytes, out ulong n);
            if (count > 0 && (nint)p == destination[count - 1].Base + (nint)destination[count - 1].Length)
            {
                // Adjacent buffers in one mapping: one entry.
                destination[count - 1].Length += (nuint)n;
            }
            else if (count < destination.Length)
            {
                destination[count++] = new Iovec((nint)p, (nuint)n);
            }
            else
            {
                break;
            }

            probe.Advance(n);
            bytes += n;
        }

        return count;
    }

    /// <summary>The error for a request past the end of this direction's buffers.</summary>
    internal readonly VirtqueueException TooShort(ulong wanted)
        => new(VirtqueueError.ChainTooShort, $"chain {_chain.Head}: {wanted} bytes wanted, {_remaining} {(_writable ? "writable" : "readable")} bytes left");

    [DoesNotReturn]
    private static void ThrowOverflow(ushort head)
        => throw new VirtqueueException(VirtqueueError.ChainLengthOverflow, $"chain {head}: the buffers' lengths add up past what a used element can report");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* Piece(ulong max, out ulong length)
    {
        EnsureCurrent();
        byte* p = _memory.TryGetContiguous(_address, Math.Min(_left, max), out length);
        if (p == null)
        {
            ThrowNotMapped();
        }

        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Advance(ulong count)
    {
        _address += count;
        _left -= count;
        _remaining -= count;
        _consumed += count;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureCurrent()
    {
        if (_left == 0)
        {
            LoadNext();
        }
    }

    private void LoadNext()
    {
        while (_left == 0 && _remaining != 0)
        {
            if (_next >= _count)
            {
                ThrowChanged();
            }

            VirtqBuffer b;
            if (_next < CachedBuffers)
            {
                b = _cache[_next];
            }
            else
            {
                if (!_walking)
                {
                    _walk = _chain.GetEnumerator();
                    for (int i = 0; i < _before + CachedBuffers; i++)
                    {
                        if (!_walk.MoveNext())
                        {
                            ThrowChanged();
                        }
                    }

                    _walking = true;
                }

                if (!_walk.MoveNext() || _walk.Current.IsWriteOnly != _writable)
                {
                    ThrowChanged();
                }

                b = _walk.Current;
            }

            _next++;
            _address = b.Address;
            _left = Math.Min(b.Length, _remaining);
        }
    }

    [DoesNotReturn]
    private readonly void ThrowChanged()
        => throw new VirtqueueException(VirtqueueError.ChainChanged, $"chain {_chain.Head}: the descriptors changed while the chain was in flight");

    [DoesNotReturn]
    private readonly void ThrowNotMapped()
        => throw new VirtqueueException(VirtqueueError.BufferNotMapped, $"chain {_chain.Head}: buffer [0x{_address:x}, +0x{_left:x}) is not inside the chain's guest memory");

    [InlineArray(CachedBuffers)]
    private struct BufferCache
    {
        private VirtqBuffer _element;
    }
}
