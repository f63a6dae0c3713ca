using Microsoft.Win32.SafeHandles;
using Vhost;

namespace VhostUserBackend.Memory;

/// <summary>
/// The vhost-user dirty-page log: a bitmap shared with the frontend (SET_LOG_BASE with
/// LOG_SHMFD) holding one bit per 4 KiB page of guest physical address space. The backend sets
/// the bit of every guest page it writes (buffers and used ring) while logging is on
/// (<c>VHOST_F_LOG_ALL</c>); bits are set with atomic OR so the frontend may clear them at any time.
/// </summary>
/// <remarks>
/// Reference counted like <see cref="GuestMemoryRegion"/>: <see cref="Dispose"/> drops the
/// creator's reference and each <see cref="GuestMemory"/> snapshot that logs into it holds one.
/// Pages beyond the end of the bitmap are not logged (the frontend sized the log for its RAM).
/// </remarks>
public sealed unsafe class DirtyLog : IDisposable
{
    /// <summary>The size of the page one bit stands for (<c>VHOST_LOG_PAGE</c>).</summary>
    public const ulong PageSize = 0x1000;

    private const int PageShift = 12;
    private readonly SafeMmapHandle _mapping;
    private readonly byte* _bitmap;
    private readonly ulong _wholeWords;
    private ReferenceCount _references = ReferenceCount.CreateOwned();
    private long _markedPages;

    private DirtyLog(SafeMmapHandle mapping, ulong size)
    {
        _mapping = mapping;
        _bitmap = mapping.Pointer;
        Size = size;
        _wholeWords = size / sizeof(ulong);
    }

    /// <summary>The bitmap size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The number of pages the bitmap covers (<see cref="Size"/> × 8).</summary>
    public ulong PageCount => Size * 8;

    /// <summary>
    /// Pages marked since the log was mapped (a page marked twice counts twice): what an operator
    /// (and the migration tests) can check the daemon logged during a migration.
    /// </summary>
    public long MarkedPages => Volatile.Read(ref _markedPages);

    /// <summary>Whether the mapping is gone.</summary>
    public bool IsUnmapped => _mapping.IsClosed;

    /// <summary>Maps the log the frontend sent (<c>VhostUserLog { mmap_size, mmap_offset }</c> plus its fd).</summary>
    /// <param name="fd">The log file (not taken over).</param>
    /// <param name="mmapOffset">Offset of the bitmap in the file (page aligned).</param>
    /// <param name="size">Bitmap size in bytes.</param>
    /// <returns>The mapped log.</returns>
    /// <exception cref="ArgumentException">A zero size, a misaligned offset, or a range past the end of the file.</exception>
    /// <exception cref="VhostException">fstat, fstatfs or mmap failed.</exception>
    public static DirtyLog Map(SafeFileHandle fd, ulong mmapOffset, ulong size)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ObjectDisposedException.ThrowIf(fd.IsClosed, fd);
        if (size == 0)
        {
            throw new ArgumentException("the dirty log cannot be empty", nameof(size));
        }

        if (mmapOffset > long.MaxValue)
        {
            throw new ArgumentException($"mmap offset 0x{mmapOffset:x} is too large", nameof(mmapOffset));
        }

        return new DirtyLog(SafeMmapHandle.MapShared(fd, (long)mmapOffset, size), size);
    }

    /// <summary>Marks every 4 KiB page that intersects <c>[guestPhysicalAddress, +length)</c>.</summary>
    /// <param name="guestPhysicalAddress">The first written guest physical address.</param>
    /// <param name="length">The number of bytes written (0 marks nothing).</param>
    public void MarkDirty(ulong guestPhysicalAddress, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong first = guestPhysicalAddress >> PageShift;
        ulong last = (guestPhysicalAddress + Math.Min(length - 1, ulong.MaxValue - guestPhysicalAddress)) >> PageShift;
        ulong pages = PageCount;
        if (first >= pages)
        {
            return;
        }

        if (last >= pages)
        {
            last = pages - 1;
        }

        Interlocked.Add(ref _markedPages, (long)(last - first + 1));

        // SAFETY: the caller of every pointer access holds a reference (a snapshot or the
        // creator's), so the mapping is alive; word and byte indices are bounded by Size.
        while (first <= last)
        {
            ulong word = first >> 6;
            int bit = (int)(first & 63);
            int count = (int)Math.Min(64UL - (ulong)bit, last - first + 1);
            ulong mask = (count == 64 ? ulong.MaxValue : ((1UL << count) - 1)) << bit;
            if (word < _wholeWords)
            {
                // Always the atomic OR, never "skip when already set": a plain load of the word
                // may be ordered before the caller's data store, see a bit the front-end is just
                // clearing, and lose the mark; the locked OR orders after the data store.
                Interlocked.Or(ref *((ulong*)_bitmap + word), mask);
            }
            else
            {
                OrTailBytes(word * sizeof(ulong), mask);
            }

            first += (ulong)count;
        }
    }

    /// <summary>Whether the bit of <paramref name="page"/> is set.</summary>
    /// <param name="page">Page number (guest physical address / 4096).</param>
    /// <returns>True when the page is marked dirty.</returns>
    public bool IsDirty(ulong page)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);

        // SAFETY: page < PageCount, so the byte index is < Size, inside the mapping.
        return (Volatile.Read(ref _bitmap[page >> 3]) & (1 << (int)(page & 7))) != 0;
    }

    /// <summary>Drops the creator's reference (idempotent).</summary>
    public void Dispose()
    {
        if (_references.ReleaseCreator())
        {
            _mapping.Dispose();
        }
    }

    internal bool TryAddReference() => _references.TryAdd();

    internal void ReleaseReference()
    {
        if (_references.Release())
        {
            _mapping.Dispose();
        }
    }

    private void OrTailBytes(ulong byteIndex, ulong mask)
    {
        for (int i = 0; i < sizeof(ulong) && byteIndex + (ulong)i < Size; i++)
        {
            byte part = (byte)(mask >> (i * 8));
            if (part == 0)
            {
                continue;
            }

            // SAFETY: byteIndex + i < Size, inside the mapping.
            // The compare-exchange runs at least once (also when the bit looks set), for the same
            // ordering reason as the OR above.
            ref byte target = ref _bitmap[byteIndex + (ulong)i];
            byte seen = Volatile.Read(ref target);
            while (true)
            {
                byte previous = Interlocked.CompareExchange(ref target, (byte)(seen | part), seen);
                if (previous == seen)
                {
                    break;
                }

                seen = previous;
            }
        }
    }
}
