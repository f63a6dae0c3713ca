namespace VhostUserBackend.Memory;

/// <summary>
/// A lock-free reference count that never comes back from zero: once the last reference is
/// released, <see cref="TryAdd"/> fails forever. Starts at one (the creator's reference).
/// </summary>
internal struct ReferenceCount
{
    private int _count;
    private int _creatorReleased;

    public static ReferenceCount CreateOwned() => new() { _count = 1 };

    public readonly int Current => Volatile.Read(in _count);

    /// <summary>Adds a reference unless the count already reached zero.</summary>
    public bool TryAdd()
    {
        int current = Volatile.Read(ref _count);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref _count, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>Drops a reference; returns true when it was the last one.</summary>
    public bool Release()
    {
        int now = Interlocked.Decrement(ref _count);
        if (now < 0)
        {
            throw new InvalidOperationException("reference released more often than it was taken");
        }

        return now == 0;
    }

    /// <summary>Drops the creator's reference once (idempotent); returns true when it was the last one.</summary>
    public bool ReleaseCreator()
        => Interlocked.Exchange(ref _creatorReleased, 1) == 0 && Release();
}
