using System.Runtime.InteropServices;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend;

/// <summary>
/// A device's SHMEM_MAP / SHMEM_UNMAP sender: maps fds into its VIRTIO shared memory regions (the
/// ones its <see cref="IVhostUserBackend.GetShmemConfig"/> reports) through the front-end, over the
/// back-end channel the daemon gives the device (<see cref="IVhostUserBackend.SetBackendChannel"/>).
/// Every request is checked before anything is sent: a configured region, page-aligned offsets and
/// length, a range inside the region (no overflow), no overlap with a mapping this sender made,
/// and an unmap of one whole mapping. Needs SHMEM and BACKEND_SEND_FD negotiated.
/// </summary>
/// <remarks>
/// Create one per back-end channel (a new front-end connection gives a new channel and a front-end
/// with no mappings). Call <see cref="Clear"/> from <see cref="IVhostUserBackend.Reset"/>: the
/// front-end drops every mapping at a device reset. Thread-safe; a request waits for the
/// front-end's acknowledgement when REPLY_ACK is negotiated (at most the channel's
/// <see cref="VhostUserBackendChannel.ReplyTimeout"/>), so send from the control thread or a thread
/// of the device, not from a worker handling a ring.
/// </remarks>
public sealed class VhostUserShmemMapper
{
    private readonly Lock _lock = new();
    private readonly VhostUserBackendChannel _channel;
    private readonly ShmemMapTable _table;

    /// <summary>A sender over <paramref name="channel"/> for the regions of <paramref name="regions"/>.</summary>
    /// <param name="channel">The back-end channel.</param>
    /// <param name="regions">The device's shared memory configuration (what its GetShmemConfig answers).</param>
    /// <exception cref="ArgumentException">The configuration is malformed or has a size that is not a page multiple.</exception>
    public VhostUserShmemMapper(VhostUserBackendChannel channel, in VhostUserShmemConfig regions)
    {
        ArgumentNullException.ThrowIfNull(channel);
        _channel = channel;
        _table = new ShmemMapTable(regions, Environment.SystemPageSize);
    }

    /// <summary>How many mappings this sender made and has not unmapped.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _table.Count;
            }
        }
    }

    /// <summary>SHMEM_MAP: asks the front-end to map <paramref name="length"/> bytes of <paramref name="fd"/> at <paramref name="fdOffset"/> into region <paramref name="shmId"/> at <paramref name="shmOffset"/>.</summary>
    /// <param name="shmId">The region.</param>
    /// <param name="shmOffset">The offset in the region (page aligned).</param>
    /// <param name="fd">The fd to map (a memfd, a dmabuf, a file); stays owned by the caller.</param>
    /// <param name="fdOffset">The offset in the fd (page aligned).</param>
    /// <param name="length">The length (a non-zero page multiple).</param>
    /// <param name="writable">Map it writable for the guest.</param>
    /// <exception cref="ArgumentException">The request breaks a rule (the message says which); nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">SHMEM or BACKEND_SEND_FD was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="Vhost.User.VhostUserException">The front-end refused it (<see cref="VhostUserPeerRefusedException"/>; nothing is recorded), or the channel broke.</exception>
    public void Map(byte shmId, ulong shmOffset, SafeHandle fd, ulong fdOffset, ulong length, bool writable)
    {
        ArgumentNullException.ThrowIfNull(fd);
        var map = new VhostUserShmemMap
        {
            ShmemId = shmId,
            ShmemOffset = shmOffset,
            FdOffset = fdOffset,
            Length = length,
            Flags = writable ? VhostUserShmemMapFlags.Writable : VhostUserShmemMapFlags.None,
        };
        lock (_lock)
        {
            if (_table.WhyNotMap(map) is { } why)
            {
                throw new ArgumentException($"SHMEM_MAP: {why}");
            }

            _channel.ShmemMap(map, fd);
            _table.Add(map);
        }
    }

    /// <summary>SHMEM_UNMAP: asks the front-end to unmap one whole mapping this sender made.</summary>
    /// <param name="shmId">The region.</param>
    /// <param name="shmOffset">The mapping's offset in the region.</param>
    /// <param name="length">The mapping's length.</param>
    /// <exception cref="ArgumentException">The range is not one whole mapping; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">SHMEM was not negotiated, or the channel failed earlier.</exception>
    /// <exception cref="Vhost.User.VhostUserException">The front-end refused it (the mapping stays recorded), or the channel broke.</exception>
    public void Unmap(byte shmId, ulong shmOffset, ulong length)
    {
        var map = new VhostUserShmemMap { ShmemId = shmId, ShmemOffset = shmOffset, Length = length };
        lock (_lock)
        {
            if (_table.WhyNotUnmap(map) is { } why)
            {
                throw new ArgumentException($"SHMEM_UNMAP: {why}");
            }

            _channel.ShmemUnmap(map);
            _table.Remove(map);
        }
    }

    /// <summary>Forgets every mapping without sending anything: the front-end dropped them (a device reset).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _table.Clear();
        }
    }
}
