using System.Runtime.CompilerServices;

namespace VhostUserBackend.Virtio;

/// <summary>
/// Reads a descriptor chain's device-readable buffers as one stream of bytes, across buffer and
/// guest memory region boundaries, without allocating (the model is rust-vmm virtio-queue's
/// <c>Reader</c>). Create it with <see cref="DescriptorChain.CreateReader"/>.
/// </summary>
/// <remarks>
/// <para>Creation walks and validates the whole chain (a hostile chain throws
/// <see cref="VirtqueueException"/> there, once) and sums the readable lengths into
/// <see cref="Remaining"/>. The reader copies the first buffers it needs, so a short chain (up to
/// four readable buffers) is never walked again; a longer one is walked again lazily.</para>
/// <para>A mutable struct: keep it in a local or a field and pass it by <c>ref</c>; a copy reads
/// on independently. It may be used on any thread (one at a time) while the chain is in flight:
/// its bytes are in the chain's <see cref="DescriptorChain.Memory"/>, which stays mapped until the
/// chain is completed. A chain of more than four readable buffers walks the queue's descriptors
/// again, which fails with <c>StaleChain</c> once the front-end changed the
/// queue's memory meanwhile. Do not use it after completing the chain.</para>
/// </remarks>
public struct DescriptorChainReader
{
    private ChainCursor _cursor;

    internal DescriptorChainReader(in DescriptorChain chain)
    {
        _cursor = new ChainCursor(chain, writable: false);
    }

    /// <summary>The chain being read (complete it with <see cref="Vring.Complete"/> when done).</summary>
    public readonly DescriptorChain Chain => _cursor.Chain;

    /// <summary>Readable bytes not read or skipped yet.</summary>
    public readonly ulong Remaining => _cursor.Remaining;

    /// <summary>Bytes read or skipped so far.</summary>
    public readonly ulong BytesRead => _cursor.Consumed;

    /// <summary>Copies the next bytes into <paramref name="destination"/>, as many as it holds and remain.</summary>
    /// <param name="destination">Where to copy to.</param>
    /// <returns>The number of bytes copied: less than the destination's length only at the end of the readable buffers.</returns>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale (the reason says which).</exception>
    public int Read(Span<byte> destination) => _cursor.CopyTo(destination);

    /// <summary>Fills <paramref name="destination"/> with the next bytes.</summary>
    /// <param name="destination">Where to copy to.</param>
    /// <exception cref="VirtqueueException">Fewer bytes remain (<c>ChainTooShort</c>; nothing is consumed), or the chain changed or went stale.</exception>
    public void ReadExactly(Span<byte> destination)
    {
        if ((ulong)destination.Length > _cursor.Remaining)
        {
            throw _cursor.TooShort((ulong)destination.Length);
        }

        _cursor.CopyTo(destination);
    }

    /// <summary>Reads an unmanaged value (host byte order, which is the little-endian of virtio on the supported hosts), wherever buffer boundaries fall inside it.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <returns>The value.</returns>
    /// <exception cref="VirtqueueException">Fewer than <c>sizeof(T)</c> bytes remain (<c>ChainTooShort</c>; nothing is consumed), or the chain changed or went stale.</exception>
    public unsafe T Read<T>()
        where T : unmanaged
    {
        T value = default;
        ReadExactly(new Span<byte>(Unsafe.AsPointer(ref value), sizeof(T)));
        return value;
    }

    /// <summary>Skips the next <paramref name="count"/> bytes (also how bytes described by <see cref="TryGetSpan"/> or <see cref="GetIovecs"/> are consumed).</summary>
    /// <param name="count">Bytes to skip.</param>
    /// <exception cref="VirtqueueException">Fewer bytes remain (<c>ChainTooShort</c>; nothing is consumed), or the chain changed or went stale.</exception>
    public void Skip(ulong count)
    {
        if (count > _cursor.Remaining)
        {
            throw _cursor.TooShort(count);
        }

        _cursor.Skip(count, markDirty: false);
    }

    /// <summary>
    /// The next bytes that lie contiguously in one buffer and one guest memory region (at most
    /// <see cref="int.MaxValue"/>), for reading in place; they are not consumed: call
    /// <see cref="Skip"/> with the number of bytes used.
    /// </summary>
    /// <param name="span">The bytes, valid while the chain is in flight; empty when false.</param>
    /// <returns>False when no readable bytes remain.</returns>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale.</exception>
    public unsafe bool TryGetSpan(out ReadOnlySpan<byte> span)
    {
        if (!_cursor.TryGetPiece(out byte* p, out int length))
        {
            span = default;
            return false;
        }

        // SAFETY: the piece lies in one region of the chain's snapshot, mapped while the chain is in flight.
        span = new ReadOnlySpan<byte>(p, length);
        return true;
    }

    /// <summary>
    /// Describes up to <paramref name="maxBytes"/> of the next readable bytes as host ranges for a
    /// vectored system call (<c>writev</c>, <c>pwritev</c>, <c>sendmsg</c>, io_uring), one entry
    /// per piece of a buffer inside one guest memory region (adjacent pieces share an entry). The
    /// bytes are not consumed: after the call, <see cref="Skip"/> the number of bytes it took.
    /// </summary>
    /// <param name="destination">The entries to fill.</param>
    /// <param name="maxBytes">The most bytes to describe.</param>
    /// <param name="bytes">The bytes described: less than requested when the entries ran out or the readable bytes ended.</param>
    /// <returns>The number of entries filled. They are valid while the chain is in flight.</returns>
    /// <exception cref="VirtqueueException">The chain changed under a second walk, or went stale.</exception>
    public readonly int GetIovecs(Span<Iovec> destination, ulong maxBytes, out ulong bytes) => _cursor.GetIovecs(destination, maxBytes, out bytes);
}
