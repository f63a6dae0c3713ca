using System.Runtime.InteropServices;
using Vhost.Vmm;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Virtio;

namespace VhostProbe.Devices;

/// <summary>
/// Drives a virtio-blk request queue through a <see cref="VmmDevice"/>: each slot owns a
/// 16-byte request header, a data buffer and a status byte in guest RAM. Synchronous calls use
/// slot 0; <see cref="Submit"/> and <see cref="Complete"/> keep many slots in flight.
/// </summary>
public sealed class VirtioBlkClient
{
    /// <summary>The sector size of virtio-blk addressing.</summary>
    public const int SectorSize = VirtioBlkRequest.SectorSize;

    /// <summary>The config bytes the probe asks for: the fields up to <c>write_zeroes_may_unmap</c>, which every back-end serves (older ones have no secure-erase or zoned fields).</summary>
    public const int ConfigBytes = 60;

    /// <summary>The status byte before the device writes it (the probe's sentinel).</summary>
    public const VirtioBlkStatus NotWritten = (VirtioBlkStatus)0xFF;

    private readonly VmmDevice _device;
    private readonly VmmQueue _queue;
    private readonly ulong[] _header;
    private readonly ulong[] _data;
    private readonly ulong[] _status;
    private readonly int[] _slotOfHead;

    /// <summary>Allocates <paramref name="slots"/> request slots of <paramref name="maxDataBytes"/> each.</summary>
    /// <param name="device">The started device (queue 0 is the request queue).</param>
    /// <param name="slots">Requests that may be in flight.</param>
    /// <param name="maxDataBytes">Largest data transfer per request.</param>
    /// <param name="queue">The request queue this client drives (virtio-blk multiqueue: 0 to num_queues-1).</param>
    public VirtioBlkClient(VmmDevice device, int slots, int maxDataBytes, int queue = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDataBytes, 1);
        _device = device;
        _queue = device.Queues[queue];
        int perRequest = _queue.MaxIndirectEntries >= 3 ? 1 : 3;
        if (slots * perRequest > _queue.Driver.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(slots), slots, $"{slots} requests of {perRequest} descriptors do not fit a queue of {_queue.Driver.Size}");
        }

        Slots = slots;
        MaxDataBytes = maxDataBytes;
        _header = new ulong[slots];
        _data = new ulong[slots];
        _status = new ulong[slots];
        _slotOfHead = new int[_queue.Driver.Size];
        for (int i = 0; i < slots; i++)
        {
            _header[i] = device.Ram.Allocate(VirtioBlkRequestHeader.Size, 16);
            _status[i] = device.Ram.Allocate(1, 1);
            _data[i] = device.Ram.Allocate((ulong)maxDataBytes, 4096);
        }
    }

    /// <summary>Request slots.</summary>
    public int Slots { get; }

    /// <summary>Largest data transfer per request.</summary>
    public int MaxDataBytes { get; }

    /// <summary>How long a synchronous request may take before <see cref="TimeoutException"/>. Default 5 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The data buffer of a slot (driver view).</summary>
    /// <param name="slot">The slot.</param>
    /// <param name="length">Bytes.</param>
    /// <returns>The span.</returns>
    public Span<byte> DataOf(int slot, int length) => _device.Ram.GetSpan(_data[slot], length);

    /// <summary>Queues a request in <paramref name="slot"/>; data for a write must already be in <see cref="DataOf"/>.</summary>
    /// <param name="slot">A free slot.</param>
    /// <param name="type">The request type.</param>
    /// <param name="sector">First sector.</param>
    /// <param name="length">Data bytes (0 for flush).</param>
    /// <returns>The chain head.</returns>
    public ushort Submit(int slot, VirtioBlkRequestType type, ulong sector, int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxDataBytes);
        var header = new VirtioBlkRequestHeader { Type = type, Sector = sector };
        MemoryMarshal.Write(_device.Ram.GetSpan(_header[slot], VirtioBlkRequestHeader.Size), in header);
        _device.Ram.GetSpan(_status[slot], 1)[0] = (byte)NotWritten;
        Span<VirtqBuffer> chain = stackalloc VirtqBuffer[3];
        int n = 0;
        chain[n++] = new VirtqBuffer(_header[slot], VirtioBlkRequestHeader.Size, false);
        if (length > 0)
        {
            chain[n++] = new VirtqBuffer(_data[slot], (uint)length, type != VirtioBlkRequestType.Out);
        }

        chain[n++] = new VirtqBuffer(_status[slot], 1, true);
        ushort head = _queue.Submit(chain[..n], indirect: _queue.MaxIndirectEntries >= 3);
        _slotOfHead[head] = slot;
        return head;
    }

    /// <summary>Waits for the next completion.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="slot">The completed slot.</param>
    /// <returns>The status the device wrote.</returns>
    /// <exception cref="TimeoutException">Nothing completed in time.</exception>
    public VirtioBlkStatus Complete(TimeSpan timeout, out int slot)
    {
        VmmCompletion c = _queue.WaitForCompletion(timeout);
        slot = _slotOfHead[c.Head];
        return (VirtioBlkStatus)_device.Ram.GetSpan(_status[slot], 1)[0];
    }

    /// <summary>Takes a completion if one is there, without waiting.</summary>
    /// <param name="slot">The completed slot.</param>
    /// <param name="status">The status the device wrote.</param>
    /// <returns>True when a request completed.</returns>
    public bool TryComplete(out int slot, out VirtioBlkStatus status)
    {
        if (!_queue.TryGetCompletion(out VmmCompletion c))
        {
            slot = -1;
            status = default;
            return false;
        }

        slot = _slotOfHead[c.Head];
        status = (VirtioBlkStatus)_device.Ram.GetSpan(_status[slot], 1)[0];
        return true;
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="sector"/>.</summary>
    /// <param name="sector">First sector.</param>
    /// <param name="destination">Where the data goes.</param>
    /// <returns>The status.</returns>
    public VirtioBlkStatus Read(ulong sector, Span<byte> destination)
    {
        VirtioBlkStatus s = Execute(VirtioBlkRequestType.In, sector, destination.Length);
        DataOf(0, destination.Length).CopyTo(destination);
        return s;
    }

    /// <summary>Writes <paramref name="source"/> at <paramref name="sector"/>.</summary>
    /// <param name="sector">First sector.</param>
    /// <param name="source">The data.</param>
    /// <returns>The status.</returns>
    public VirtioBlkStatus Write(ulong sector, ReadOnlySpan<byte> source)
    {
        source.CopyTo(DataOf(0, source.Length));
        return Execute(VirtioBlkRequestType.Out, sector, source.Length);
    }

    /// <summary>Flushes the device's write cache.</summary>
    /// <returns>The status.</returns>
    public VirtioBlkStatus Flush() => Execute(VirtioBlkRequestType.Flush, 0, 0);

    /// <summary>Reads the device id string (GET_ID, 20 bytes).</summary>
    /// <param name="id">The id (up to the first NUL).</param>
    /// <returns>The status.</returns>
    public VirtioBlkStatus GetId(out string id)
    {
        VirtioBlkStatus s = Execute(VirtioBlkRequestType.GetId, 0, VirtioBlkRequest.IdBytes);
        ReadOnlySpan<byte> raw = DataOf(0, 20);
        int nul = raw.IndexOf((byte)0);
        id = System.Text.Encoding.ASCII.GetString(nul < 0 ? raw : raw[..nul]);
        return s;
    }

    private VirtioBlkStatus Execute(VirtioBlkRequestType type, ulong sector, int length)
    {
        Submit(0, type, sector, length);
        return Complete(Timeout, out _);
    }
}
