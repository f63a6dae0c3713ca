using Microsoft.Win32.SafeHandles;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Testing;

/// <summary>
/// Guest RAM for tests, benchmarks and small VMMs: one memfd holding one or more guest physical
/// regions, mapped once for the driver (the "guest" side), from which device-side
/// <see cref="GuestMemoryRegion"/>s are mapped separately, as a vhost-user backend would map
/// the fds the frontend sends. Includes a bump allocator for rings and buffers.
/// </summary>
/// <remarks>The frontend user address of a region is where the driver view maps it, as QEMU would report its own mapping.</remarks>
public sealed unsafe class GuestRam : IDisposable
{
    private readonly SafeFileHandle _fd;
    private readonly SafeMmapHandle _view;
    private readonly GuestRamRegion[] _regions;
    private int _allocRegion;
    private ulong _allocNext;

    private GuestRam(SafeFileHandle fd, SafeMmapHandle view, GuestRamRegion[] regions)
    {
        _fd = fd;
        _view = view;
        _regions = regions;
        _allocNext = regions[0].GuestPhysicalAddress;
    }

    /// <summary>The memfd holding the RAM.</summary>
    public SafeFileHandle FileHandle => _fd;

    /// <summary>The regions, in the order given.</summary>
    public IReadOnlyList<GuestRamRegion> Regions => _regions;

    /// <summary>Creates RAM of <paramref name="size"/> bytes at <paramref name="guestPhysicalAddress"/>.</summary>
    /// <param name="size">Size in bytes (rounded up to the page size).</param>
    /// <param name="guestPhysicalAddress">Guest physical address of the first byte.</param>
    /// <returns>The RAM.</returns>
    public static GuestRam Create(ulong size, ulong guestPhysicalAddress = 0) => Create([(guestPhysicalAddress, size)]);

    /// <summary>Creates RAM made of several regions (one memfd, consecutive file offsets).</summary>
    /// <param name="layout">The regions' guest physical addresses and sizes (sizes rounded up to the page size).</param>
    /// <returns>The RAM.</returns>
    /// <exception cref="ArgumentException">No region, or a zero size.</exception>
    public static GuestRam Create(ReadOnlySpan<(ulong GuestPhysicalAddress, ulong Size)> layout)
    {
        if (layout.IsEmpty)
        {
            throw new ArgumentException("guest RAM needs at least one region", nameof(layout));
        }

        ulong page = (ulong)Environment.SystemPageSize;
        var regions = new GuestRamRegion[layout.Length];
        ulong offset = 0;
        for (int i = 0; i < layout.Length; i++)
        {
            if (layout[i].Size == 0)
            {
                throw new ArgumentException("a region cannot be empty", nameof(layout));
            }

            ulong size = (layout[i].Size + page - 1) & ~(page - 1);
            regions[i] = new GuestRamRegion(layout[i].GuestPhysicalAddress, size, offset, 0);
            offset += size;
        }

        SafeFileHandle fd = Fd.CreateMemFd("vhost-guest-ram", (long)offset);
        try
        {
            SafeMmapHandle view = SafeMmapHandle.MapShared(fd, 0, offset);
            for (int i = 0; i < regions.Length; i++)
            {
                regions[i] = regions[i] with { UserAddress = (ulong)view.Pointer + regions[i].FileOffset };
            }

            return new GuestRam(fd, view, regions);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Maps every region device-side (a separate mapping of the memfd).</summary>
    /// <returns>New regions; the caller owns them (see <see cref="GuestMemory.Create"/>).</returns>
    public GuestMemoryRegion[] MapRegions()
    {
        var mapped = new GuestMemoryRegion[_regions.Length];
        int done = 0;
        try
        {
            for (; done < mapped.Length; done++)
            {
                GuestRamRegion r = _regions[done];
                mapped[done] = GuestMemoryRegion.Map(_fd, r.FileOffset, r.Size, r.GuestPhysicalAddress, r.UserAddress);
            }

            return mapped;
        }
        catch
        {
            for (int i = 0; i < done; i++)
            {
                mapped[i].Dispose();
            }

            throw;
        }
    }

    /// <summary>A device-side snapshot of the whole RAM.</summary>
    /// <param name="dirtyLog">Optional dirty log.</param>
    /// <returns>A snapshot holding one reference for the caller.</returns>
    public GuestMemory CreateGuestMemory(DirtyLog? dirtyLog = null) => GuestMemory.Create(MapRegions(), dirtyLog);

    /// <summary>Allocates <paramref name="size"/> bytes aligned to <paramref name="alignment"/> (never freed; zero-filled at creation).</summary>
    /// <param name="size">Bytes.</param>
    /// <param name="alignment">A power of two.</param>
    /// <returns>The guest physical address.</returns>
    /// <exception cref="InvalidOperationException">No region has room left (nothing is allocated then).</exception>
    public ulong Allocate(ulong size, ulong alignment = 8)
    {
        if (alignment == 0 || !ulong.IsPow2(alignment))
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two");
        }

        // A failed request moves nothing: later, smaller requests still fit where this one did not.
        int region = _allocRegion;
        ulong next = _allocNext;
        while (region < _regions.Length)
        {
            GuestRamRegion r = _regions[region];
            ulong start = (next + alignment - 1) & ~(alignment - 1);
            ulong end = r.GuestPhysicalAddress + r.Size;
            if (start >= next && start <= end && end - start >= size)
            {
                _allocRegion = region;
                _allocNext = start + size;
                return start;
            }

            if (++region < _regions.Length)
            {
                next = _regions[region].GuestPhysicalAddress;
            }
        }

        throw new InvalidOperationException($"guest RAM has no room for 0x{size:x} more bytes");
    }

    /// <summary>The driver-side view of a range inside one region.</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="length">Bytes.</param>
    /// <returns>A span over the driver mapping.</returns>
    /// <exception cref="ArgumentException">The range is not inside one region.</exception>
    public Span<byte> GetSpan(ulong guestPhysicalAddress, int length) => new(PointerOf(guestPhysicalAddress, (ulong)length), length);

    /// <summary>Copies bytes into guest RAM (driver side).</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="data">The bytes.</param>
    public void Write(ulong guestPhysicalAddress, ReadOnlySpan<byte> data) => data.CopyTo(GetSpan(guestPhysicalAddress, data.Length));

    /// <summary>Copies bytes out of guest RAM (driver side).</summary>
    /// <param name="guestPhysicalAddress">First address.</param>
    /// <param name="destination">Where to copy to.</param>
    public void Read(ulong guestPhysicalAddress, Span<byte> destination) => GetSpan(guestPhysicalAddress, destination.Length).CopyTo(destination);

    /// <summary>Unmaps the driver view and closes the memfd (device-side regions stay mapped until released).</summary>
    public void Dispose()
    {
        _view.Dispose();
        _fd.Dispose();
    }

    /// <summary>The driver-view pointer of a range inside one region.</summary>
    internal byte* PointerOf(ulong guestPhysicalAddress, ulong length)
    {
        ObjectDisposedException.ThrowIf(_view.IsClosed, this);
        foreach (GuestRamRegion r in _regions)
        {
            if (guestPhysicalAddress >= r.GuestPhysicalAddress && guestPhysicalAddress - r.GuestPhysicalAddress <= r.Size && r.Size - (guestPhysicalAddress - r.GuestPhysicalAddress) >= length)
            {
                // SAFETY: the range lies inside region r, which the driver view maps at FileOffset.
                return _view.Pointer + r.FileOffset + (guestPhysicalAddress - r.GuestPhysicalAddress);
            }
        }

        throw new ArgumentException($"guest RAM range [0x{guestPhysicalAddress:x}, +0x{length:x}) is not inside one region", nameof(guestPhysicalAddress));
    }
}
