using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// The mappings of a device's VIRTIO shared memory regions, and the spec's rules for SHMEM_MAP and
/// SHMEM_UNMAP checked against them: a configured region (GET_SHMEM_CONFIG), a page-aligned range
/// inside it, no overlap with an existing mapping ("mapping over an already existing map is not
/// allowed"), and an unmap that covers one whole mapping. One table on each side: the back-end's
/// <c>VhostUserShmemMapper</c> refuses before it sends, the front-end's
/// <see cref="VhostUserShmemRegions"/> refuses what a back-end sends. Not thread-safe.
/// </summary>
internal sealed class ShmemMapTable
{
    private readonly ulong[] _sizes;
    private readonly ulong _pageSize;
    private readonly List<(byte ShmId, ulong Offset, ulong Length)> _maps = [];

    /// <summary>The table of the regions in <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentException">The configuration is malformed or has a size that is not a page multiple.</exception>
    public ShmemMapTable(in VhostUserShmemConfig config, int pageSize)
    {
        if (!config.IsValid() || !config.HasPageSizedRegions(pageSize))
        {
            throw new ArgumentException("the shared memory configuration is malformed or has a region size that is not a page multiple", nameof(config));
        }

        _sizes = ((ReadOnlySpan<ulong>)config.MemorySizes).ToArray();
        _pageSize = (ulong)pageSize;
    }

    /// <summary>The size of region <paramref name="shmId"/> (0: not configured).</summary>
    public ulong SizeOf(byte shmId) => _sizes[shmId];

    /// <summary>How many mappings exist.</summary>
    public int Count => _maps.Count;

    /// <summary>Why <paramref name="map"/> may not be mapped, or <see langword="null"/>.</summary>
    public string? WhyNotMap(in VhostUserShmemMap map)
    {
        if ((map.Flags & ~VhostUserShmemMapFlags.Writable) != 0)
        {
            return $"unknown flags 0x{(ulong)map.Flags:x}";
        }

        if (map.FdOffset % _pageSize != 0)
        {
            return $"fd offset 0x{map.FdOffset:x} is not a multiple of the 0x{_pageSize:x}-byte page";
        }

        if (WhyNotRange(map) is { } bad)
        {
            return bad;
        }

        foreach ((byte id, ulong offset, ulong length) in _maps)
        {
            if (id == map.ShmemId && map.ShmemOffset < offset + length && offset < map.ShmemOffset + map.Length)
            {
                return $"[0x{map.ShmemOffset:x}, +0x{map.Length:x}) overlaps the mapping [0x{offset:x}, +0x{length:x}) of region {id}";
            }
        }

        return null;
    }

    /// <summary>Why <paramref name="map"/> may not be unmapped (it must be one whole mapping), or <see langword="null"/>.</summary>
    public string? WhyNotUnmap(in VhostUserShmemMap map)
        => WhyNotRange(map) ?? (IndexOf(map) < 0 ? $"[0x{map.ShmemOffset:x}, +0x{map.Length:x}) of region {map.ShmemId} is not one whole mapping" : null);

    /// <summary>Records a mapping <see cref="WhyNotMap"/> accepted.</summary>
    public void Add(in VhostUserShmemMap map) => _maps.Add((map.ShmemId, map.ShmemOffset, map.Length));

    /// <summary>Forgets a mapping <see cref="WhyNotUnmap"/> accepted.</summary>
    public void Remove(in VhostUserShmemMap map)
    {
        int i = IndexOf(map);
        if (i >= 0)
        {
            _maps.RemoveAt(i);
        }
    }

    /// <summary>The mappings, as (region, offset, length).</summary>
    public IReadOnlyList<(byte ShmId, ulong Offset, ulong Length)> Mappings => _maps;

    /// <summary>Forgets every mapping (a device reset: the front-end unmaps them all).</summary>
    public void Clear() => _maps.Clear();

    private int IndexOf(in VhostUserShmemMap map)
    {
        for (int i = 0; i < _maps.Count; i++)
        {
            if (_maps[i] == (map.ShmemId, map.ShmemOffset, map.Length))
            {
                return i;
            }
        }

        return -1;
    }

    private string? WhyNotRange(in VhostUserShmemMap map)
    {
        ulong size = _sizes[map.ShmemId];
        if (size == 0)
        {
            return $"shared memory region {map.ShmemId} is not configured";
        }

        if (map.Length == 0 || map.Length % _pageSize != 0 || map.ShmemOffset % _pageSize != 0)
        {
            return $"offset 0x{map.ShmemOffset:x} and length 0x{map.Length:x} must be non-zero multiples of the 0x{_pageSize:x}-byte page";
        }

        if (map.ShmemOffset >= size || map.Length > size - map.ShmemOffset)
        {
            return $"[0x{map.ShmemOffset:x}, +0x{map.Length:x}) goes beyond region {map.ShmemId} (size 0x{size:x})";
        }

        return null;
    }
}
