using System.Runtime.InteropServices;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// The front-end's side of a device's VIRTIO shared memory regions (SHMEM): one reservation of
/// address space per region of the GET_SHMEM_CONFIG answer (inaccessible until mapped), into which
/// the back-end's SHMEM_MAP requests map their fds and out of which SHMEM_UNMAP takes them. A VMM
/// exposes <see cref="BaseAddress"/> to the guest (a PCI BAR, an MMIO window) and calls
/// <see cref="Map"/> / <see cref="Unmap"/> from its <see cref="IVhostUserFrontendRequestHandler"/>.
/// Every request is checked before anything changes: a configured region, a page-aligned range
/// inside it, a mappable fd with the range inside its file, no overlap with an existing mapping,
/// and an unmap of one whole mapping. A refused request throws, and the dispatcher answers the
/// back-end with the failure.
/// </summary>
/// <remarks>Thread-safe. Disposing releases every reservation and mapping.</remarks>
public sealed class VhostUserShmemRegions : IDisposable
{
    private readonly Lock _lock = new();
    private readonly ShmemMapTable _table;
    private readonly SafeMmapHandle?[] _reservations = new SafeMmapHandle?[VhostUserLimits.MaxShmemRegions];

    /// <summary>Reserves the address space of every region in <paramref name="config"/>.</summary>
    /// <param name="config">The back-end's GET_SHMEM_CONFIG answer (<see cref="VhostUserFrontend.GetShmemConfig"/>).</param>
    /// <exception cref="ArgumentException">The configuration is malformed.</exception>
    public VhostUserShmemRegions(in VhostUserShmemConfig config)
    {
        _table = new ShmemMapTable(config, Environment.SystemPageSize);
        try
        {
            for (int id = 0; id < _reservations.Length; id++)
            {
                ulong size = _table.SizeOf((byte)id);
                _reservations[id] = size == 0 ? null : SafeMmapHandle.Reserve(size);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The address of region <paramref name="shmId"/> in this process.</summary>
    /// <param name="shmId">The region.</param>
    /// <returns>The base address.</returns>
    /// <exception cref="ArgumentException">The region is not configured.</exception>
    public nint BaseAddress(byte shmId)
        => Reservation(shmId).DangerousGetHandle();

    /// <summary>The size of region <paramref name="shmId"/> (0: not configured).</summary>
    /// <param name="shmId">The region.</param>
    /// <returns>The size in bytes.</returns>
    public ulong Size(byte shmId) => _table.SizeOf(shmId);

    /// <summary>The mappings now in place, as (region, offset, length).</summary>
    public IReadOnlyList<(byte ShmId, ulong Offset, ulong Length)> Mappings
    {
        get
        {
            lock (_lock)
            {
                return [.. _table.Mappings];
            }
        }
    }

    /// <summary>SHMEM_MAP: maps <paramref name="fd"/> into the region, after the checks.</summary>
    /// <param name="map">The request.</param>
    /// <param name="fd">The fd it came with; the caller keeps ownership (the mapping holds its own reference).</param>
    /// <exception cref="ArgumentException">The request breaks a rule (the message says which); nothing was mapped.</exception>
    /// <exception cref="ObjectDisposedException">Disposed.</exception>
    public void Map(in VhostUserShmemMap map, SafeHandle fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        lock (_lock)
        {
            if (_table.WhyNotMap(map) is { } why)
            {
                throw new ArgumentException($"SHMEM_MAP refused: {why}", nameof(map));
            }

            if (map.FdOffset > long.MaxValue)
            {
                throw new ArgumentException($"SHMEM_MAP refused: fd offset 0x{map.FdOffset:x} is negative as an off_t", nameof(map));
            }

            SafeMmapHandle.CheckMappable(fd, (long)map.FdOffset, map.Length);
            Reservation(map.ShmemId).MapFixedShared(map.ShmemOffset, map.Length, fd, (long)map.FdOffset, (map.Flags & VhostUserShmemMapFlags.Writable) != 0);
            _table.Add(map);
        }
    }

    /// <summary>SHMEM_UNMAP: takes one whole mapping out of the region (the range becomes inaccessible again).</summary>
    /// <param name="map">The request (its fd offset and flags are ignored).</param>
    /// <exception cref="ArgumentException">The range is not one whole mapping; nothing changed.</exception>
    /// <exception cref="ObjectDisposedException">Disposed.</exception>
    public void Unmap(in VhostUserShmemMap map)
    {
        lock (_lock)
        {
            if (_table.WhyNotUnmap(map) is { } why)
            {
                throw new ArgumentException($"SHMEM_UNMAP refused: {why}", nameof(map));
            }

            Reservation(map.ShmemId).UnmapFixed(map.ShmemOffset, map.Length);
            _table.Remove(map);
        }
    }

    /// <summary>Unmaps every mapping: the spec's rule for a device reset.</summary>
    /// <exception cref="ObjectDisposedException">Disposed.</exception>
    public void Clear()
    {
        lock (_lock)
        {
            foreach ((byte id, ulong offset, ulong length) in _table.Mappings)
            {
                Reservation(id).UnmapFixed(offset, length);
            }

            _table.Clear();
        }
    }

    /// <summary>Releases every reservation and mapping. Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            for (int id = 0; id < _reservations.Length; id++)
            {
                _reservations[id]?.Dispose();
                _reservations[id] = null;
            }

            _table.Clear();
        }
    }

    private SafeMmapHandle Reservation(byte shmId)
    {
        SafeMmapHandle? r = _reservations[shmId];
        if (r is null || r.IsClosed)
        {
            ObjectDisposedException.ThrowIf(r is not null || _table.SizeOf(shmId) != 0, this);
            throw new ArgumentException($"shared memory region {shmId} is not configured", nameof(shmId));
        }

        return r;
    }
}
