using VhostUserBackend.Devices.Net;

namespace VhostUserNet;

/// <summary>
/// A bounded queue of frames (each with its 12-byte virtio-net header) into one port, preallocated
/// so the data path allocates nothing. Many producers (the workers of other ports, or the port's
/// own worker in responder mode) enqueue; one consumer (the port's worker) peeks and advances.
/// </summary>
/// <remarks>
/// The slot protocol is the bounded MPMC queue by sequence numbers (D. Vyukov): slot <c>i</c>'s
/// sequence equals the enqueue position when it is free and the position + 1 when it holds a frame;
/// consuming sets it to the position + capacity. A full queue drops the frame (like a NIC with no
/// buffers), which the caller counts.
/// </remarks>
internal sealed class FrameQueue
{
    private readonly byte[] _data;
    private readonly int[] _length;
    private readonly long[] _sequence;
    private readonly int _mask;
    private readonly int _slotSize;
    private long _enqueuePosition;
    private long _dequeuePosition;

    /// <summary>Creates a queue of <paramref name="capacity"/> slots of <paramref name="slotSize"/> bytes.</summary>
    /// <param name="capacity">Slots (a power of two).</param>
    /// <param name="slotSize">The largest frame (header included).</param>
    public FrameQueue(int capacity, int slotSize)
    {
        if (capacity < 2 || !int.IsPow2(capacity))
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the capacity must be a power of two, at least 2");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(slotSize, VirtioNetHeader.Size);
        _data = GC.AllocateUninitializedArray<byte>(checked(capacity * slotSize));
        _length = new int[capacity];
        _sequence = new long[capacity];
        for (int i = 0; i < capacity; i++)
        {
            _sequence[i] = i;
        }

        _mask = capacity - 1;
        _slotSize = slotSize;
    }

    /// <summary>The slots.</summary>
    public int Capacity => _mask + 1;

    /// <summary>The largest frame a slot holds (header included).</summary>
    public int SlotSize => _slotSize;

    /// <summary>Whether no frame is queued, or being queued by a producer (consumer thread only).</summary>
    public bool IsEmpty => Volatile.Read(ref _enqueuePosition) == _dequeuePosition;

    /// <summary>Copies a frame in (any thread).</summary>
    /// <param name="frame">The header and frame.</param>
    /// <returns>False when the queue is full or the frame does not fit a slot (dropped).</returns>
    public bool TryEnqueue(ReadOnlySpan<byte> frame)
    {
        if (frame.Length > _slotSize)
        {
            return false;
        }

        long position = Volatile.Read(ref _enqueuePosition);
        int slot;
        while (true)
        {
            slot = (int)(position & _mask);
            long sequence = Volatile.Read(ref _sequence[slot]);
            long difference = sequence - position;
            if (difference == 0)
            {
                long seen = Interlocked.CompareExchange(ref _enqueuePosition, position + 1, position);
                if (seen == position)
                {
                    break;
                }

                position = seen;
            }
            else if (difference < 0)
            {
                return false;
            }
            else
            {
                position = Volatile.Read(ref _enqueuePosition);
            }
        }

        frame.CopyTo(_data.AsSpan(slot * _slotSize, _slotSize));
        _length[slot] = frame.Length;
        Volatile.Write(ref _sequence[slot], position + 1);
        return true;
    }

    /// <summary>The oldest frame, left in place (consumer thread only).</summary>
    /// <param name="frame">The header and frame; valid until <see cref="Advance"/>. The consumer may modify it.</param>
    /// <returns>False when the queue is empty.</returns>
    public bool TryPeek(out Span<byte> frame)
    {
        long position = _dequeuePosition;
        int slot = (int)(position & _mask);
        if (Volatile.Read(ref _sequence[slot]) != position + 1)
        {
            frame = default;
            return false;
        }

        frame = _data.AsSpan(slot * _slotSize, _length[slot]);
        return true;
    }

    /// <summary>Frees the frame <see cref="TryPeek"/> returned (consumer thread only).</summary>
    public void Advance()
    {
        long position = _dequeuePosition;
        int slot = (int)(position & _mask);
        Volatile.Write(ref _sequence[slot], position + _mask + 1);
        _dequeuePosition = position + 1;
    }
}
