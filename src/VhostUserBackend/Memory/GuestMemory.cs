using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.InteropServices;

namespace VhostUserBackend.Memory;

/// <summary>
/// An immutable snapshot of guest memory: a set of <see cref="GuestMemoryRegion"/>s sorted by
/// guest physical address, overlapping neither in guest physical nor in frontend user address
/// space, plus the dirty log in force when it was made. Translates addresses to bounded spans
/// and performs checked reads and writes that never leave the mappings.
/// </summary>
/// <remarks>
/// <para>Reference counted. The creator owns one reference and drops it with
/// <see cref="Dispose"/>; a device holds a snapshot through a <see cref="GuestMemoryLease"/>
/// (from <see cref="GuestMemoryAtomic.Lease"/>) or a popped chain, and ready queues hold their
/// own reference. When the count reaches zero the snapshot lets go of its regions and log, which
/// are unmapped once no other snapshot uses them.</para>
/// <para>All members are thread-safe (the snapshot never changes). Writes through
/// <see cref="Write(ulong, ReadOnlySpan{byte})"/> and <see cref="Write{T}(ulong, in T)"/> are
/// logged in the dirty log; after writing through a span from <see cref="GetSpan"/>, call
/// <see cref="MarkDirty"/>.</para>
/// </remarks>
public sealed unsafe class GuestMemory : IDisposable
{
    private static long s_nextGeneration;
    private readonly GuestMemoryRegion[] _regions;
    private readonly Entry[] _entries;
    private ReferenceCount _references = ReferenceCount.CreateOwned();

    private GuestMemory(GuestMemoryRegion[] sortedRegions, DirtyLog? log)
    {
        _regions = sortedRegions;
        _entries = new Entry[sortedRegions.Length];
        for (int i = 0; i < sortedRegions.Length; i++)
        {
            GuestMemoryRegion r = sortedRegions[i];
            _entries[i] = new Entry(r.GuestPhysicalAddress, r.LastGuestPhysicalAddress, r.Host);
        }

        DirtyLog = log;
        Generation = Interlocked.Increment(ref s_nextGeneration);
    }

    /// <summary>The regions, sorted by guest physical address.</summary>
    public IReadOnlyList<GuestMemoryRegion> Regions => _regions;

    /// <summary>The dirty log writes are recorded in, or <see langword="null"/> when logging is off.</summary>
    public DirtyLog? DirtyLog { get; }

    /// <summary>A process-wide increasing number identifying this snapshot (a newer snapshot has a larger one).</summary>
    public long Generation { get; }

    /// <summary>Whether every reference was released (the snapshot must not be used any more).</summary>
    internal bool IsReleased => _references.Current <= 0;

    /// <summary>
    /// Builds a snapshot of <paramref name="regions"/>. On success the snapshot takes over the
    /// creator's reference of each region (as if <see cref="GuestMemoryRegion.Dispose"/> had been
    /// called); on failure the caller still owns them.
    /// </summary>
    /// <param name="regions">The regions; any order.</param>
    /// <param name="dirtyLog">The dirty log to record writes in, or null. The snapshot takes its own reference; the caller keeps its own.</param>
    /// <returns>The snapshot, holding one reference for the caller.</returns>
    /// <exception cref="ArgumentException">Two regions overlap in guest physical or in user address space, or a region appears twice.</exception>
    /// <exception cref="ObjectDisposedException">A region or the log is already unmapped.</exception>
    public static GuestMemory Create(IEnumerable<GuestMemoryRegion> regions, DirtyLog? dirtyLog = null)
    {
        ArgumentNullException.ThrowIfNull(regions);
        GuestMemoryRegion[] array = [.. regions];
        GuestMemory memory = Build(array, dirtyLog);
        foreach (GuestMemoryRegion region in array)
        {
            region.Dispose();
        }

        return memory;
    }

    /// <summary>Builds a snapshot with the same regions and log plus <paramref name="region"/>, whose creator reference it takes over.</summary>
    /// <param name="region">The region to add.</param>
    /// <returns>The new snapshot, holding one reference for the caller. This snapshot is unchanged.</returns>
    /// <exception cref="ArgumentException">The region overlaps an existing one.</exception>
    /// <exception cref="ObjectDisposedException">This snapshot was released, or the region is unmapped.</exception>
    internal GuestMemory WithRegion(GuestMemoryRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        ThrowIfReleased();
        GuestMemory memory = Build([.. _regions, region], DirtyLog);
        region.Dispose();
        return memory;
    }

    /// <summary>Builds a snapshot without the region that starts at <paramref name="guestPhysicalAddress"/> and has <paramref name="size"/> bytes (vhost-user REM_MEM_REG).</summary>
    /// <param name="guestPhysicalAddress">The region's guest physical address.</param>
    /// <param name="size">The region's size.</param>
    /// <returns>The new snapshot, holding one reference for the caller.</returns>
    /// <exception cref="ArgumentException">No region matches.</exception>
    /// <exception cref="ObjectDisposedException">This snapshot was released.</exception>
    internal GuestMemory WithoutRegion(ulong guestPhysicalAddress, ulong size)
    {
        ThrowIfReleased();
        int index = Array.FindIndex(_regions, r => r.GuestPhysicalAddress == guestPhysicalAddress && r.Size == size);
        if (index < 0)
        {
            throw new ArgumentException($"no memory region [0x{guestPhysicalAddress:x}, +0x{size:x}) to remove", nameof(guestPhysicalAddress));
        }

        GuestMemoryRegion[] rest = [.. _regions.AsSpan(0, index), .. _regions.AsSpan(index + 1)];
        return Build(rest, DirtyLog);
    }

    /// <summary>Builds a snapshot with the same regions and another dirty log (or none).</summary>
    /// <param name="dirtyLog">The new log, or null to stop logging. The snapshot takes its own reference.</param>
    /// <returns>The new snapshot, holding one reference for the caller.</returns>
    /// <exception cref="ObjectDisposedException">This snapshot was released, or the log is unmapped.</exception>
    internal GuestMemory WithDirtyLog(DirtyLog? dirtyLog)
    {
        ThrowIfReleased();
        return Build([.. _regions], dirtyLog);
    }

    /// <summary>An empty snapshot (no regions).</summary>
    /// <returns>A snapshot holding one reference for the caller.</returns>
    internal static GuestMemory CreateEmpty() => Build([], null);

    /// <summary>Takes one more reference; false when the snapshot was already released.</summary>
    /// <returns>True when a reference was taken (pair it with <see cref="Release"/>).</returns>
    internal bool TryAddReference() => _references.TryAdd();

    /// <summary>Releases a reference taken by <see cref="GuestMemoryAtomic.Acquire"/> or <see cref="TryAddReference"/>.</summary>
    internal void Release()
    {
        if (_references.Release())
        {
            Free();
        }
    }

    /// <summary>Releases the creator's reference (idempotent).</summary>
    public void Dispose()
    {
        if (_references.ReleaseCreator())
        {
            Free();
        }
    }

    /// <summary>Whether every byte of <c>[guestPhysicalAddress, +length)</c> is mapped (possibly by several adjacent regions).</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="length">Length in bytes (a zero length is always mapped).</param>
    /// <returns>True when the whole range is mapped.</returns>
    public bool IsRangeMapped(ulong guestPhysicalAddress, ulong length)
    {
        if (length == 0)
        {
            return true;
        }

        if (guestPhysicalAddress > ulong.MaxValue - (length - 1))
        {
            return false;
        }

        ulong address = guestPhysicalAddress;
        ulong last = guestPhysicalAddress + (length - 1);
        while (true)
        {
            int i = Find(address);
            if (i < 0)
            {
                return false;
            }

            ulong regionLast = _entries[i].Last;
            if (regionLast >= last)
            {
                return true;
            }

            address = regionLast + 1;
        }
    }

    /// <summary>Translates a range that lies within one region to a span over the mapping.</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="length">Length in bytes.</param>
    /// <param name="span">The span, valid while this snapshot is referenced.</param>
    /// <returns>False when the range is not entirely inside one region.</returns>
    public bool TryGetSpan(ulong guestPhysicalAddress, int length, out Span<byte> span)
    {
        byte* p = length < 0 ? null : TryGetPointer(guestPhysicalAddress, (ulong)length);
        if (p == null)
        {
            span = default;
            return false;
        }

        // SAFETY: TryGetPointer checked the whole range against one live region.
        span = new Span<byte>(p, length);
        return true;
    }

    /// <summary>Translates a range that must lie within one region to a span over the mapping.</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="length">Length in bytes.</param>
    /// <returns>The span, valid while this snapshot is referenced.</returns>
    /// <exception cref="GuestMemoryException">The range is not mapped, wraps, or crosses a region boundary.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    public Span<byte> GetSpan(ulong guestPhysicalAddress, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (!TryGetSpan(guestPhysicalAddress, length, out Span<byte> span))
        {
            throw RangeError(guestPhysicalAddress, (ulong)length);
        }

        return span;
    }

    /// <summary>Copies guest memory into <paramref name="destination"/>, crossing adjacent regions as needed.</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="destination">Where to copy to; its length is the number of bytes read.</param>
    /// <exception cref="GuestMemoryException">Part of the range is not mapped, or it wraps.</exception>
    public void Read(ulong guestPhysicalAddress, Span<byte> destination)
    {
        // The usual case, a range inside one region: one lookup, one copy.
        byte* p = TryGetPointer(guestPhysicalAddress, (ulong)destination.Length);
        if (p != null)
        {
            // SAFETY: TryGetPointer checked the whole range against one live region.
            new ReadOnlySpan<byte>(p, destination.Length).CopyTo(destination);
            return;
        }

        ThrowIfNotMapped(guestPhysicalAddress, (ulong)destination.Length);
        ulong address = guestPhysicalAddress;
        while (!destination.IsEmpty)
        {
            ref readonly Entry e = ref _entries[Find(address)];
            int chunk = (int)Math.Min((ulong)destination.Length, e.Last - address + 1);

            // SAFETY: address..address+chunk-1 is inside entry e (checked above), whose mapping is alive.
            new ReadOnlySpan<byte>(e.Host + (address - e.First), chunk).CopyTo(destination);
            destination = destination[chunk..];
            address += (ulong)chunk;
        }
    }

    /// <summary>Copies <paramref name="source"/> into guest memory, crossing adjacent regions as needed, and logs the written pages.</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="source">The bytes to write.</param>
    /// <exception cref="GuestMemoryException">Part of the range is not mapped, or it wraps.</exception>
    public void Write(ulong guestPhysicalAddress, ReadOnlySpan<byte> source)
    {
        byte* p = TryGetPointer(guestPhysicalAddress, (ulong)source.Length);
        if (p != null)
        {
            // SAFETY: TryGetPointer checked the whole range against one live region.
            source.CopyTo(new Span<byte>(p, source.Length));
            DirtyLog?.MarkDirty(guestPhysicalAddress, (ulong)source.Length);
            return;
        }

        ThrowIfNotMapped(guestPhysicalAddress, (ulong)source.Length);
        ulong address = guestPhysicalAddress;
        ReadOnlySpan<byte> rest = source;
        while (!rest.IsEmpty)
        {
            ref readonly Entry e = ref _entries[Find(address)];
            int chunk = (int)Math.Min((ulong)rest.Length, e.Last - address + 1);

            // SAFETY: address..address+chunk-1 is inside entry e (checked above), whose mapping is alive.
            rest[..chunk].CopyTo(new Span<byte>(e.Host + (address - e.First), chunk));
            rest = rest[chunk..];
            address += (ulong)chunk;
        }

        DirtyLog?.MarkDirty(guestPhysicalAddress, (ulong)source.Length);
    }

    /// <summary>Reads an unmanaged value (guest byte order is the host's; virtio rings are little-endian like the supported hosts).</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="guestPhysicalAddress">Address of the value (no alignment required).</param>
    /// <returns>A copy of the value.</returns>
    /// <exception cref="GuestMemoryException">The value is not entirely mapped.</exception>
    public T Read<T>(ulong guestPhysicalAddress)
        where T : unmanaged
    {
        byte* p = TryGetPointer(guestPhysicalAddress, (ulong)sizeof(T));
        if (p != null)
        {
            // SAFETY: the sizeof(T) bytes at p lie inside one live region.
            return Unsafe.ReadUnaligned<T>(p);
        }

        T value = default;
        Read(guestPhysicalAddress, new Span<byte>(&value, sizeof(T)));
        return value;
    }

    /// <summary>Writes an unmanaged value and logs the written pages.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="guestPhysicalAddress">Address of the value (no alignment required).</param>
    /// <param name="value">The value.</param>
    /// <exception cref="GuestMemoryException">The destination is not entirely mapped.</exception>
    public void Write<T>(ulong guestPhysicalAddress, in T value)
        where T : unmanaged
    {
        fixed (T* p = &value)
        {
            Write(guestPhysicalAddress, new ReadOnlySpan<byte>(p, sizeof(T)));
        }
    }

    /// <summary>Marks <c>[guestPhysicalAddress, +length)</c> dirty in the log (no-op when logging is off).</summary>
    /// <param name="guestPhysicalAddress">First written address.</param>
    /// <param name="length">Bytes written.</param>
    public void MarkDirty(ulong guestPhysicalAddress, ulong length) => DirtyLog?.MarkDirty(guestPhysicalAddress, length);

    /// <summary>Translates a frontend user address range (as vring addresses arrive in SET_VRING_ADDR) to a guest physical address.</summary>
    /// <param name="userAddress">The frontend's address.</param>
    /// <param name="length">The length of the range that must lie inside one region.</param>
    /// <param name="guestPhysicalAddress">The guest physical address of <paramref name="userAddress"/>.</param>
    /// <returns>False when no single region contains the range.</returns>
    internal bool TryTranslateUserAddress(ulong userAddress, ulong length, out ulong guestPhysicalAddress)
    {
        ulong span = length == 0 ? 0 : length - 1;
        if (userAddress <= ulong.MaxValue - span)
        {
            foreach (GuestMemoryRegion r in _regions)
            {
                if (userAddress >= r.UserAddress && userAddress + span <= r.LastUserAddress)
                {
                    guestPhysicalAddress = r.GuestPhysicalAddress + (userAddress - r.UserAddress);
                    return true;
                }
            }
        }

        guestPhysicalAddress = 0;
        return false;
    }

    /// <summary>
    /// Translates one frontend user address to a guest physical address and says how many bytes
    /// from there on the same region maps (an IOTLB translation ends in a user address and is cut
    /// at region boundaries, where guest physical contiguity is not promised).
    /// </summary>
    /// <param name="userAddress">The frontend's address.</param>
    /// <param name="guestPhysicalAddress">Its guest physical address.</param>
    /// <param name="regionRemaining">Bytes from <paramref name="userAddress"/> to the end of its region (at least 1).</param>
    /// <returns>False when no region maps the address.</returns>
    internal bool TryTranslateUserAddress(ulong userAddress, out ulong guestPhysicalAddress, out ulong regionRemaining)
    {
        foreach (GuestMemoryRegion r in _regions)
        {
            if (userAddress >= r.UserAddress && userAddress <= r.LastUserAddress)
            {
                guestPhysicalAddress = r.GuestPhysicalAddress + (userAddress - r.UserAddress);
                regionRemaining = r.LastUserAddress - userAddress + 1;
                return true;
            }
        }

        guestPhysicalAddress = 0;
        regionRemaining = 0;
        return false;
    }

    /// <summary>Translates a frontend user address range to a guest physical address.</summary>
    /// <param name="userAddress">The frontend's address.</param>
    /// <param name="length">The length of the range that must lie inside one region.</param>
    /// <returns>The guest physical address of <paramref name="userAddress"/>.</returns>
    /// <exception cref="GuestMemoryException">No single region contains the range (<c>UserAddressNotMapped</c>).</exception>
    internal ulong TranslateUserAddress(ulong userAddress, ulong length)
    {
        if (!TryTranslateUserAddress(userAddress, length, out ulong gpa))
        {
            throw new GuestMemoryException(GuestMemoryError.UserAddressNotMapped, userAddress, length);
        }

        return gpa;
    }

    /// <summary>
    /// Hints the processor to start loading the first bytes at an address into its caches, so a
    /// later read or write of it does not wait for memory (for example the buffers of a burst of
    /// chains, prefetched before they are copied one by one). Only a hint: an address that is not
    /// mapped is ignored, nothing is validated, nothing is thrown, and on processors without a
    /// prefetch instruction available to .NET it does nothing.
    /// </summary>
    /// <param name="guestPhysicalAddress">The address whose cache line (and the next one) to load.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(ulong guestPhysicalAddress)
    {
        if (Sse.IsSupported)
        {
            byte* p = TryGetPointer(guestPhysicalAddress, 1);
            if (p != null)
            {
                // SAFETY: a prefetch never faults; p is inside a live mapping.
                Sse.Prefetch0(p);
                Sse.Prefetch0(p + 64);
            }
        }
    }

    /// <summary>A host pointer to a range inside one region, or null. Valid while the snapshot is referenced.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* TryGetPointer(ulong guestPhysicalAddress, ulong length)
    {
        int i = Find(guestPhysicalAddress);
        if (i < 0)
        {
            return null;
        }

        ref readonly Entry e = ref _entries[i];
        ulong available = e.Last - guestPhysicalAddress;
        if (length != 0 && length - 1 > available)
        {
            return null;
        }

        return e.Host + (guestPhysicalAddress - e.First);
    }

    /// <summary>
    /// A host pointer to <paramref name="guestPhysicalAddress"/> and how many of the next
    /// <paramref name="length"/> bytes follow it contiguously in the same region (at least 1), or
    /// null when the address is not mapped. Valid while the snapshot is referenced.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* TryGetContiguous(ulong guestPhysicalAddress, ulong length, out ulong contiguous)
    {
        int i = Find(guestPhysicalAddress);
        if (i < 0)
        {
            contiguous = 0;
            return null;
        }

        ref readonly Entry e = ref _entries[i];
        ulong available = e.Last - guestPhysicalAddress;
        contiguous = length != 0 && length - 1 > available ? available + 1 : length;
        return e.Host + (guestPhysicalAddress - e.First);
    }

    /// <summary>The error for a range that <see cref="TryGetPointer"/> rejected.</summary>
    internal GuestMemoryException RangeError(ulong guestPhysicalAddress, ulong length)
    {
        if (length != 0 && guestPhysicalAddress > ulong.MaxValue - (length - 1))
        {
            return new GuestMemoryException(GuestMemoryError.AddressOverflow, guestPhysicalAddress, length);
        }

        return IsRangeMapped(guestPhysicalAddress, length)
            ? new GuestMemoryException(GuestMemoryError.RangeNotContiguous, guestPhysicalAddress, length)
            : new GuestMemoryException(GuestMemoryError.AddressNotMapped, guestPhysicalAddress, length);
    }

    private static GuestMemory Build(GuestMemoryRegion[] regions, DirtyLog? log)
    {
        foreach (GuestMemoryRegion r in regions)
        {
            ArgumentNullException.ThrowIfNull(r, nameof(regions));
        }

        Array.Sort(regions, static (a, b) => a.GuestPhysicalAddress.CompareTo(b.GuestPhysicalAddress));
        for (int i = 1; i < regions.Length; i++)
        {
            if (ReferenceEquals(regions[i - 1], regions[i]) || regions[i - 1].OverlapsGuestPhysical(regions[i]))
            {
                throw new ArgumentException($"memory regions overlap in guest physical address space: {regions[i - 1]} and {regions[i]}", nameof(regions));
            }
        }

        GuestMemoryRegion[] byUser = [.. regions];
        Array.Sort(byUser, static (a, b) => a.UserAddress.CompareTo(b.UserAddress));
        for (int i = 1; i < byUser.Length; i++)
        {
            if (byUser[i - 1].OverlapsUser(byUser[i]))
            {
                throw new ArgumentException($"memory regions overlap in frontend user address space: {byUser[i - 1]} and {byUser[i]}", nameof(regions));
            }
        }

        int taken = 0;
        bool logTaken = false;
        try
        {
            for (; taken < regions.Length; taken++)
            {
                if (!regions[taken].TryAddReference())
                {
                    throw new ObjectDisposedException(regions[taken].ToString(), "the memory region is already unmapped");
                }
            }

            if (log is not null)
            {
                logTaken = log.TryAddReference();
                if (!logTaken)
                {
                    throw new ObjectDisposedException(nameof(DirtyLog), "the dirty log is already unmapped");
                }
            }

            return new GuestMemory(regions, log);
        }
        catch
        {
            for (int i = 0; i < taken; i++)
            {
                regions[i].ReleaseReference();
            }

            if (logTaken)
            {
                log!.ReleaseReference();
            }

            throw;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(ulong address)
    {
        Entry[] entries = _entries;
        int lo = 0;
        int hi = entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            ref readonly Entry e = ref entries[mid];
            if (address < e.First)
            {
                hi = mid - 1;
            }
            else if (address > e.Last)
            {
                lo = mid + 1;
            }
            else
            {
                return mid;
            }
        }

        return -1;
    }

    private void ThrowIfNotMapped(ulong guestPhysicalAddress, ulong length)
    {
        if (!IsRangeMapped(guestPhysicalAddress, length))
        {
            throw length != 0 && guestPhysicalAddress > ulong.MaxValue - (length - 1)
                ? new GuestMemoryException(GuestMemoryError.AddressOverflow, guestPhysicalAddress, length)
                : new GuestMemoryException(GuestMemoryError.AddressNotMapped, guestPhysicalAddress, length);
        }
    }

    private void ThrowIfReleased() => ObjectDisposedException.ThrowIf(IsReleased, this);

    private void Free()
    {
        foreach (GuestMemoryRegion r in _regions)
        {
            r.ReleaseReference();
        }

        DirtyLog?.ReleaseReference();
    }

    [StructLayout(LayoutKind.Auto)]
    private readonly struct Entry(ulong first, ulong last, byte* host)
    {
        public readonly ulong First = first;
        public readonly ulong Last = last;
        public readonly byte* Host = host;
    }
}
