namespace VhostUserBackend.Memory;

/// <summary>
/// The current guest memory of a connection (rust-vmm's <c>GuestMemoryAtomic</c>), shared by the
/// control thread that applies memory updates (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG,
/// SET_LOG_BASE) and the threads that read it. A device receives it in
/// <see cref="IVhostUserBackend.UpdateMemory"/> and takes the current snapshot with
/// <see cref="Lease"/>; an update publishes a new snapshot, and the old one's mappings are
/// unmapped only after its last lease is disposed.
/// </summary>
/// <remarks>Updates are serialized with a lock; reads never take it (a volatile read and a
/// reference-count increment).</remarks>
public sealed class GuestMemoryAtomic
{
    private readonly Lock _updateLock = new();
    private GuestMemory _current;
    private volatile bool _disposed;

    /// <summary>Creates the holder with an empty memory.</summary>
    internal GuestMemoryAtomic()
        : this(GuestMemory.CreateEmpty())
    {
    }

    /// <summary>Creates the holder around <paramref name="initial"/>, taking over the caller's reference.</summary>
    /// <param name="initial">The first snapshot.</param>
    internal GuestMemoryAtomic(GuestMemory initial)
    {
        ArgumentNullException.ThrowIfNull(initial);
        _current = initial;
    }

    /// <summary>The generation of the current snapshot (changes with every update; cheap to poll).</summary>
    public long Generation => Volatile.Read(ref _current).Generation;

    /// <summary>Takes the current snapshot for as long as the lease is not disposed.</summary>
    /// <returns>The lease.</returns>
    /// <exception cref="ObjectDisposedException">The connection that owned the memory ended.</exception>
    public GuestMemoryLease Lease() => new(Acquire());

    /// <summary>Takes a reference on the current snapshot. Pair every call with <see cref="GuestMemory.Release"/>.</summary>
    /// <returns>The current snapshot, referenced for the caller.</returns>
    /// <exception cref="ObjectDisposedException">The holder was disposed.</exception>
    internal GuestMemory Acquire()
    {
        while (true)
        {
            GuestMemory current = Volatile.Read(ref _current);
            if (current.TryAddReference())
            {
                return current;
            }

            // The snapshot was replaced and released between the read and the increment:
            // the new one is already published, so read again.
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
    }

    /// <summary>Publishes <paramref name="memory"/> (taking over the caller's reference) and releases the previous snapshot (SET_MEM_TABLE).</summary>
    /// <param name="memory">The new snapshot.</param>
    /// <exception cref="ObjectDisposedException">The holder was disposed.</exception>
    internal void Replace(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        lock (_updateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Publish(memory);
        }
    }

    /// <summary>Publishes a snapshot with <paramref name="region"/> added (ADD_MEM_REG); takes over the region's creator reference on success.</summary>
    /// <param name="region">The new region.</param>
    /// <exception cref="ArgumentException">It overlaps an existing region.</exception>
    /// <exception cref="ObjectDisposedException">The holder was disposed.</exception>
    internal void AddRegion(GuestMemoryRegion region)
    {
        lock (_updateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Publish(_current.WithRegion(region));
        }
    }

    /// <summary>Publishes a snapshot without the region at <paramref name="guestPhysicalAddress"/> of <paramref name="size"/> bytes (REM_MEM_REG).</summary>
    /// <param name="guestPhysicalAddress">The region's guest physical address.</param>
    /// <param name="size">The region's size.</param>
    /// <exception cref="ArgumentException">No region matches.</exception>
    /// <exception cref="ObjectDisposedException">The holder was disposed.</exception>
    internal void RemoveRegion(ulong guestPhysicalAddress, ulong size)
    {
        lock (_updateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Publish(_current.WithoutRegion(guestPhysicalAddress, size));
        }
    }

    /// <summary>Publishes a snapshot that logs writes into <paramref name="dirtyLog"/> (or stops logging when null). The snapshot takes its own reference on the log.</summary>
    /// <param name="dirtyLog">The log, or null.</param>
    /// <exception cref="ObjectDisposedException">The holder was disposed.</exception>
    internal void SetDirtyLog(DirtyLog? dirtyLog)
    {
        lock (_updateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Publish(_current.WithDirtyLog(dirtyLog));
        }
    }

    /// <summary>Releases the current snapshot (readers still holding one keep it until they release it).</summary>
    internal void Dispose()
    {
        lock (_updateLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _current.Dispose();
        }
    }

    private void Publish(GuestMemory next)
    {
        GuestMemory previous = _current;
        Volatile.Write(ref _current, next);
        previous.Dispose();
    }
}
