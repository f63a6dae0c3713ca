using System.Numerics;

namespace VhostUserBackend;

/// <summary>
/// The completions of one ring that arrive from threads other than its worker: a bounded,
/// allocation-free queue of 64-bit entries with many producers (any thread that completes a
/// chain) and one consumer (the ring's worker, or the control thread while the worker is paused).
/// </summary>
/// <remarks>
/// Vyukov's bounded queue by sequence numbers: slot <c>i</c>'s sequence equals the enqueue
/// position while it is free and the position + 1 once it holds an entry; taking the entry sets it
/// to the position + capacity. The capacity is at least the ring's largest size, and a ring never
/// has more chains in flight than its size, so a well-behaved device never finds it full.
/// </remarks>
internal sealed class CompletionQueue
{
    private readonly ulong[] _entries;
    private readonly long[] _sequence;
    private readonly int _mask;
    private long _enqueuePosition;
    private long _dequeuePosition;

    /// <summary>Creates a queue of at least <paramref name="minimumCapacity"/> entries.</summary>
    public CompletionQueue(int minimumCapacity)
    {
        int capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(minimumCapacity, 2));
        _entries = new ulong[capacity];
        _sequence = new long[capacity];
        for (int i = 0; i < capacity; i++)
        {
            _sequence[i] = i;
        }

        _mask = capacity - 1;
    }

    /// <summary>Whether the queue looks empty (a hint for the consumer).</summary>
    public bool IsEmpty => Volatile.Read(ref _dequeuePosition) == Volatile.Read(ref _enqueuePosition);

    /// <summary>Adds an entry (any thread). False when full, which only a device that completes a chain twice can cause.</summary>
    public bool TryEnqueue(ulong entry)
    {
        long position = Volatile.Read(ref _enqueuePosition);
        while (true)
        {
            int slot = (int)(position & _mask);
            long difference = Volatile.Read(ref _sequence[slot]) - position;
            if (difference == 0)
            {
                long seen = Interlocked.CompareExchange(ref _enqueuePosition, position + 1, position);
                if (seen == position)
                {
                    _entries[slot] = entry;

                    // Release: the entry (and everything the completer wrote before it) is visible
                    // to the consumer that sees the new sequence.
                    Volatile.Write(ref _sequence[slot], position + 1);
                    return true;
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
    }

    /// <summary>Takes the oldest entry (the single consumer only).</summary>
    public bool TryDequeue(out ulong entry)
    {
        long position = _dequeuePosition;
        int slot = (int)(position & _mask);
        if (Volatile.Read(ref _sequence[slot]) != position + 1)
        {
            entry = 0;
            return false;
        }

        entry = _entries[slot];
        Volatile.Write(ref _sequence[slot], position + _mask + 1);
        Volatile.Write(ref _dequeuePosition, position + 1);
        return true;
    }
}
