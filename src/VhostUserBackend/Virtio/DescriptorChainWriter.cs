using System.Runtime.CompilerServices;

namespace VhostUserBackend.Virtio;

/// <summary>
/// Writes a descriptor chain's device-writable buffers as one stream of bytes, across buffer and
/// guest memory region boundaries, without allocating, and logs every byte it writes in the dirty
/// log (the model is rust-vmm virtio-queue's <c>Writer</c>). Create it with
/// <see cref="DescriptorChain.CreateWriter"/>; complete the chain with <see cref="BytesWritten"/>.
/// </summary>
/// <remarks>
/// <para><b>Dirty logging.</b> While the front-end logs dirty pages (a migration), every byte is
/// marked in the chain's memory's <see cref="Memory.GuestMemory.DirtyLog"/> as soon as it is
/// written: by <see cref="Write(ReadOnlySpan{byte})"/>, <see cref="WriteExactly"/> and
/// <see cref="Write{T}(in T)"/> right after the copy, and for bytes written in place through
/// <see cref="TryGetSpan"/> or <see cref="GetIovecs"/> when <see cref="Commit"/> declares them
/// written. All marks are thus made before the chain is completed (the virtio rule: before the
/// used element that makes the data visible). The device marks nothing by hand; the ring logs its
/// own used-ring writes, and <see cref="Vring.Complete"/> also marks the completed length again
/// (harmless). <see cref="Skip"/> marks nothing: skipped bytes were not written.</para>
/// <para>Creation walks and validates the whole chain (a hostile chain throws
/// <see cref="VirtqueueException"/> there, once) and sums the writable lengths into
/// <see cref="Remaining"/>; more than 2^32 - 1 writable bytes is
/// <c>ChainLengthOverflow</c>, since a used element cannot report them.</para>
/// <para>A mutable struct: keep it in a local or a field and pass it by <c>ref</c>. It may be used
/// on any thread (one at a time) while the chain is in flight, under the same terms as
/// <see cref="DescriptorChainReader"/>.</para>
/// </remarks>
public struct DescriptorChainWriter
{
    private ChainCursor _cursor;

    internal DescriptorChainWriter(in DescriptorChain chain)
    {
        _cursor = new ChainCursor(chain, writable: true);
    }

    /// <summary>The chain being written (complete it with <see cref="Vring.Complete"/>(chain, <see cref="BytesWritten"/>)).</summary>
    public readonly DescriptorChain Chain => _cursor.Chain;

    /// <summary>Writable bytes not written or skipped yet.</summary>
    public readonly ulong Remaining => _cursor.Remaining;

    /// <summary>
    /// The used length to complete the chain with: the bytes from the start of the writable buffers
    /// up to the current position, written, committed or skipped (virtio's used length is such a prefix).
    /// </summary>
    public readonly uint BytesWritten => (uint)_cursor.Consumed;

    /// <summary>Copies <paramref name="source"/> into the next writable bytes, as many as fit, and logs them.</summary>
    /// <param name="source">The bytes to write.</param>
    /// <returns>The number of bytes written: less than the source's length only at the end of the writable buffers.</returns>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale.</exception>
    public int Write(ReadOnlySpan<byte> source) => _cursor.CopyFrom(source);

    /// <summary>Copies all of <paramref name="source"/> into the next writable bytes and logs them.</summary>
    /// <param name="source">The bytes to write.</param>
    /// <exception cref="VirtqueueException">Less room remains (<c>ChainTooShort</c>; nothing is written), or the chain changed or went stale.</exception>
    public void WriteExactly(ReadOnlySpan<byte> source)
    {
        if ((ulong)source.Length > _cursor.Remaining)
        {
            throw _cursor.TooShort((ulong)source.Length);
        }

        _cursor.CopyFrom(source);
    }

    /// <summary>Writes an unmanaged value (host byte order, the little-endian of virtio on the supported hosts), wherever buffer boundaries fall inside it, and logs it.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="value">The value.</param>
    /// <exception cref="VirtqueueException">Less than <c>sizeof(T)</c> bytes of room remain (<c>ChainTooShort</c>; nothing is written), or the chain changed or went stale.</exception>
    public unsafe void Write<T>(in T value)
        where T : unmanaged
    {
        WriteExactly(new ReadOnlySpan<byte>(Unsafe.AsPointer(ref Unsafe.AsRef(in value)), sizeof(T)));
    }

    /// <summary>Moves past the next <paramref name="count"/> bytes without writing or logging them (they count in <see cref="BytesWritten"/>).</summary>
    /// <param name="count">Bytes to skip.</param>
    /// <exception cref="VirtqueueException">Less room remains (<c>ChainTooShort</c>; nothing is skipped), or the chain changed or went stale.</exception>
    public void Skip(ulong count)
    {
        if (count > _cursor.Remaining)
        {
            throw _cursor.TooShort(count);
        }

        _cursor.Skip(count, markDirty: false);
    }

    /// <summary>
    /// Declares the next <paramref name="count"/> bytes written in place (through
    /// <see cref="TryGetSpan"/> or <see cref="GetIovecs"/>, by a system call or another thread),
    /// logs them in the dirty log and moves past them.
    /// </summary>
    /// <param name="count">Bytes written, at most <see cref="Remaining"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is larger than <see cref="Remaining"/>.</exception>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale.</exception>
    public void Commit(ulong count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _cursor.Remaining);
        _cursor.Skip(count, markDirty: true);
    }

    /// <summary>
    /// The next writable bytes that lie contiguously in one buffer and one guest memory region (at
    /// most <see cref="int.MaxValue"/>), for writing in place; then call <see cref="Commit"/> with
    /// the number of bytes written, which logs them.
    /// </summary>
    /// <param name="span">The bytes, valid while the chain is in flight; empty when false.</param>
    /// <returns>False when no writable bytes remain.</returns>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale.</exception>
    public unsafe bool TryGetSpan(out Span<byte> span)
    {
        if (!_cursor.TryGetPiece(out byte* p, out int length))
        {
            span = default;
            return false;
        }

        // SAFETY: the piece lies in one region of the chain's snapshot, mapped while the chain is in flight.
        span = new Span<byte>(p, length);
        return true;
    }

    /// <summary>
    /// Describes up to <paramref name="maxBytes"/> of the next writable bytes as host ranges for a
    /// vectored system call (<c>readv</c>, <c>preadv</c>, <c>recvmsg</c>, io_uring), one entry per
    /// piece of a buffer inside one guest memory region (adjacent pieces share an entry). Nothing is
    /// consumed or logged: after the call, <see cref="Commit"/> the number of bytes it wrote.
    /// </summary>
    /// <param name="destination">The entries to fill.</param>
    /// <param name="maxBytes">The most bytes to describe.</param>
    /// <param name="bytes">The bytes described: less than requested when the entries ran out or the writable bytes ended.</param>
    /// <returns>The number of entries filled. They are valid while the chain is in flight.</returns>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale.</exception>
    public readonly int GetIovecs(Span<Iovec> destination, ulong maxBytes, out ulong bytes) => _cursor.GetIovecs(destination, maxBytes, out bytes);
}
