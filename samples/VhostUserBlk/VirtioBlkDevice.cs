using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBlk;

/// <summary>
/// A virtio-blk device (virtio 1.2 §5.2) over a <see cref="BlkImage"/>: IN, OUT, FLUSH, GET_ID,
/// DISCARD and WRITE_ZEROES with status bytes, config space through GET_CONFIG (and the
/// <c>writeback</c> byte through SET_CONFIG), several request queues, event index, indirect
/// descriptors. Inflight tracking and reconnect come from <see cref="VhostUserDaemon"/>.
/// </summary>
/// <remarks>
/// A malformed request (short header, no status byte, misaligned or out-of-range sectors, a bad
/// descriptor) is answered with IOERR (or UNSUPP for an unknown type or flag) when it has a status
/// byte, and returned with length 0 otherwise; it never stops the queue. Each worker thread has a
/// preallocated <see cref="Workspace"/>, so serving a request allocates nothing.
/// </remarks>
internal sealed unsafe class VirtioBlkDevice : IVhostUserBackend, IDisposable
{
    /// <summary>The largest queue size offered.</summary>
    public const ushort QueueSizeLimit = 1024;

    /// <summary><c>seg_max</c>: segments per request (QEMU's default queue size 128, minus header and status).</summary>
    public const uint SegmentsPerRequest = 126;

    /// <summary><c>size_max</c>: bytes per segment.</summary>
    public const uint SegmentSizeLimit = 1 << 20;

    /// <summary>Sectors per DISCARD / WRITE_ZEROES segment.</summary>
    public const uint MaxDiscardSectors = 1 << 22;

    /// <summary>DISCARD / WRITE_ZEROES segments per request.</summary>
    public const uint MaxDiscardSegments = 1;

    /// <summary>The serial length (VIRTIO_BLK_ID_BYTES).</summary>
    public const int IdBytes = 20;

    private const ulong LogAllFeature = 1UL << 26;
    private const string InactiveImage = "write while the image is inactive (another daemon may write it: the destination of a finished migration, or this daemon's incoming migration has not started its rings)";

    private const int HeaderSize = 16;
    private const int DiscardSegmentSize = 16;
    private const int MaxIovecs = 1024;

    private readonly BlkImage _image;
    private readonly ILogger _logger;
    private readonly byte[] _id = new byte[IdBytes];
    private readonly Workspace[] _workspaces;
    private readonly ulong[] _groups;
    private volatile bool _writeback = true;
    private ulong _acked;
    private ulong _startedRings;
    private long _badRequests;
    private bool _disposed;

    /// <summary>Creates the device.</summary>
    /// <param name="image">The disk (the device owns it).</param>
    /// <param name="queues">Request queues (1 to 64).</param>
    /// <param name="threads">Worker threads the queues are spread over (1 to <paramref name="queues"/>).</param>
    /// <param name="serial">The GET_ID serial (ASCII, at most 20 bytes).</param>
    /// <param name="logger">Logs bad requests.</param>
    public VirtioBlkDevice(BlkImage image, int queues, int threads, string serial, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(queues, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, queues);
        if (Encoding.ASCII.GetByteCount(serial) > IdBytes || serial.Any(c => c > 0x7f))
        {
            throw new ArgumentException($"the serial must be at most {IdBytes} ASCII characters: '{serial}'", nameof(serial));
        }

        _image = image;
        _logger = logger;
        Encoding.ASCII.GetBytes(serial, _id);
        QueueCount = queues;
        _groups = new ulong[threads];
        for (int q = 0; q < queues; q++)
        {
            _groups[q % threads] |= 1UL << q;
        }

        _workspaces = new Workspace[threads];
        for (int t = 0; t < threads; t++)
        {
            _workspaces[t] = new Workspace(QueueSizeLimit);
        }
    }

    /// <inheritdoc/>
    public int QueueCount { get; }

    /// <inheritdoc/>
    public ushort MaxQueueSize => QueueSizeLimit;

    /// <summary>The polling window after each event (zero: notification-driven only).</summary>
    public TimeSpan PollingTime { get; init; }

    /// <inheritdoc/>
    public TimeSpan GetPollingTime(int threadIndex) => PollingTime;

    /// <summary>The virtio-blk features this device offers.</summary>
    public VirtioBlkFeatures DeviceFeatures
    {
        get
        {
            VirtioBlkFeatures f = VirtioBlkFeatures.Version1 | VirtioBlkFeatures.RingEventIndex | VirtioBlkFeatures.RingIndirectDescriptors
                | VirtioBlkFeatures.SizeMax | VirtioBlkFeatures.SegMax | VirtioBlkFeatures.BlockSize | VirtioBlkFeatures.Flush
                | VirtioBlkFeatures.ConfigWce | VirtioBlkFeatures.MultiQueue;
            return _image.IsReadOnly
                ? f | VirtioBlkFeatures.ReadOnly
                : f | VirtioBlkFeatures.Discard | VirtioBlkFeatures.WriteZeroes;
        }
    }

    /// <inheritdoc/>
    public ulong Features => (ulong)DeviceFeatures;

    /// <inheritdoc/>
    public VhostUserProtocolFeatures ProtocolFeatures => IVhostUserBackend.DefaultProtocolFeatures | VhostUserProtocolFeatures.Config;

    /// <inheritdoc/>
    public IReadOnlyList<ulong> QueuesPerThread => _groups;

    /// <summary>Requests answered IOERR/UNSUPP or dropped as malformed since start.</summary>
    public long BadRequests => Interlocked.Read(ref _badRequests);

    /// <inheritdoc/>
    public void AcknowledgeFeatures(ulong features) => Volatile.Write(ref _acked, features);

    /// <inheritdoc/>
    public void GetConfig(uint offset, Span<byte> data)
    {
        if (offset > VhostUserLimits.MaxConfigSize || data.Length > VhostUserLimits.MaxConfigSize - offset)
        {
            throw new VhostUserException(VhostUserError.InvalidParameter, $"config read [{offset}, +{data.Length}) is outside the {VhostUserLimits.MaxConfigSize}-byte config space");
        }

        Span<byte> config = stackalloc byte[VhostUserLimits.MaxConfigSize];
        VirtioBlkConfigSpace.Write(
            config, _image.Sectors, SegmentSizeLimit, SegmentsPerRequest, BlkImage.SectorSize, _writeback, (ushort)QueueCount,
            _image.IsReadOnly ? 0 : MaxDiscardSectors, _image.IsReadOnly ? 0 : MaxDiscardSegments, 8,
            _image.IsReadOnly ? 0 : MaxDiscardSectors, _image.IsReadOnly ? 0 : MaxDiscardSegments, !_image.IsReadOnly);
        config.Slice((int)offset, data.Length).CopyTo(data);
    }

    /// <inheritdoc/>
    public void SetConfig(uint offset, ReadOnlySpan<byte> data)
    {
        if (offset != VirtioBlkConfigSpace.WritebackOffset || data.Length != 1 || data[0] > 1)
        {
            throw new VhostUserException(VhostUserError.InvalidParameter, $"only the writeback byte (offset {VirtioBlkConfigSpace.WritebackOffset}, 0 or 1) is writable, not [{offset}, +{data.Length})");
        }

        _writeback = data[0] == 1;
        _logger.LogInformation("write cache: {Mode}", _writeback ? "write-back" : "write-through");
    }

    /// <inheritdoc/>
    public void Reset()
    {
        _writeback = true;
        Volatile.Write(ref _acked, 0);
        _startedRings = 0;
    }

    /// <summary>
    /// Hands the image over in a live migration (control thread): the first ring to start takes
    /// write access (the destination of an incoming migration, or a source whose migration
    /// failed and resumes); when the last ring stops while QEMU logs dirty pages (the end of a
    /// migration), the source gives write access up, so the destination's daemon can take it.
    /// </summary>
    public void OnVringStateChanged(Vring vring)
    {
        ulong bit = 1UL << vring.Index;
        _startedRings = vring.IsStarted ? _startedRings | bit : _startedRings & ~bit;
        if (_image.Lock is not { } imageLock)
        {
            return;
        }

        if (_startedRings != 0 && !imageLock.IsActive)
        {
            try
            {
                imageLock.Activate();
                _logger.LogInformation("image active: this daemon writes it now (its rings started)");
            }
            catch (IOException e)
            {
                _logger.LogError("the rings started but the image cannot be taken over, so writes fail with IOERR until it can: {Reason}", e.Message);
            }
        }
        else if (_startedRings == 0 && imageLock.IsActive && (Volatile.Read(ref _acked) & LogAllFeature) != 0)
        {
            imageLock.Deactivate();
            _logger.LogInformation("image inactive: the rings stopped at the end of a migration, so write access is given up for the destination");
        }
    }

    /// <inheritdoc/>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int threadIndex)
    {
        Vring? vring = null;
        foreach (Vring v in vrings)
        {
            if (v.Index == deviceEvent)
            {
                vring = v;
            }
        }

        if (vring is null || !vring.IsReady)
        {
            return;
        }

        Workspace ws = _workspaces[threadIndex];
        bool used = false;
        do
        {
            vring.DisableNotification();
            while (vring.TryPopDescriptorChain(out DescriptorChain chain))
            {
                uint length;
                try
                {
                    length = Process(chain, ws);
                }
                catch (GuestMemoryException e)
                {
                    // Not expected (the chain's buffers were validated), but never let one request stop the queue.
                    length = Bad(chain.Head, e.Message);
                }

                vring.AddUsedDeferred(chain.Head, length);
                used = true;
            }

            // One used.idx store per batch, before asking for kicks again.
            vring.PublishUsed();
        }
        while (vring.EnableNotification());

        if (used)
        {
            vring.SignalUsedQueue();
        }
    }

    /// <summary>Frees the workspaces and closes the image.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (Workspace ws in _workspaces)
        {
            ws.Dispose();
        }

        _image.Dispose();
    }

    /// <summary>Serves one request; returns the bytes written into the chain's writable buffers.</summary>
    private uint Process(DescriptorChain chain, Workspace ws)
    {
        GuestMemory memory = chain.Memory!;
        int count = 0;
        ulong readable = 0;
        ulong writable = 0;
        try
        {
            foreach (VirtqBuffer b in chain)
            {
                if (count == ws.Buffers.Length)
                {
                    return Bad(chain.Head, "more buffers than the queue size");
                }

                ws.Buffers[count++] = b;
                if (b.IsWriteOnly)
                {
                    writable += b.Length;
                }
                else
                {
                    readable += b.Length;
                }
            }
        }
        catch (VirtqueueException e)
        {
            // No status byte can be trusted in an invalid chain: return it empty.
            LogBad(chain.Head, e.Message);
            return 0;
        }

        ReadOnlySpan<VirtqBuffer> buffers = ws.Buffers.AsSpan(0, count);
        if (writable == 0)
        {
            LogBad(chain.Head, "no writable status byte");
            return 0;
        }

        ulong statusAddress = LastWritableByte(buffers);
        if (readable < HeaderSize)
        {
            return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, "the request header is shorter than 16 bytes");
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        Gather(memory, buffers, 0, header);
        var type = (VirtioBlkRequestType)BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        ulong dataIn = writable - 1;
        ulong dataOut = readable - HeaderSize;
        VirtioBlkFeatures acked = (VirtioBlkFeatures)Volatile.Read(ref _acked);
        switch (type)
        {
            case VirtioBlkRequestType.In:
            {
                if (!CheckRange(sector, dataIn, out string? why))
                {
                    return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, why);
                }

                if (!BuildIovecs(memory, buffers, writableOnly: true, skip: 0, dataIn, ws, out int n))
                {
                    return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, "too many segments");
                }

                Errno e = n == 0 ? Errno.None : _image.Read(ws.Iovecs, n, (long)(sector * BlkImage.SectorSize));
                if (e != Errno.None)
                {
                    return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, $"read at sector {sector}: {e}");
                }

                MarkDirty(memory, buffers, dataIn);
                return Finish(memory, statusAddress, VirtioBlkStatus.Ok, (uint)dataIn);
            }

            case VirtioBlkRequestType.Out:
            {
                if (!_image.IsWritable)
                {
                    return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, _image.IsReadOnly ? "write to a read-only disk" : InactiveImage);
                }

                if (!CheckRange(sector, dataOut, out string? why))
                {
                    return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, why);
                }

                if (!BuildIovecs(memory, buffers, writableOnly: false, skip: HeaderSize, dataOut, ws, out int n))
                {
                    return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, "too many segments");
                }

                Errno e = n == 0 ? Errno.None : _image.Write(ws.Iovecs, n, (long)(sector * BlkImage.SectorSize));
                if (e == Errno.None && !IsWriteBack(acked))
                {
                    e = _image.Flush();
                }

                return e == Errno.None
                    ? Finish(memory, statusAddress, VirtioBlkStatus.Ok, 0)
                    : Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, $"write at sector {sector}: {e}");
            }

            case VirtioBlkRequestType.Flush:
            {
                Errno e = _image.IsReadOnly ? Errno.None : _image.Flush();
                return e == Errno.None
                    ? Finish(memory, statusAddress, VirtioBlkStatus.Ok, 0)
                    : Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, chain.Head, $"flush: {e}");
            }

            case VirtioBlkRequestType.GetId:
            {
                int n = (int)Math.Min(dataIn, IdBytes);
                Scatter(memory, buffers, _id.AsSpan(0, n));
                return Finish(memory, statusAddress, VirtioBlkStatus.Ok, (uint)n);
            }

            case VirtioBlkRequestType.Discard or VirtioBlkRequestType.WriteZeroes:
                return DiscardOrWriteZeroes(memory, buffers, type, acked, dataOut, statusAddress, chain.Head);

            default:
                return Finish(memory, statusAddress, VirtioBlkStatus.Unsupported, 0, chain.Head, $"request type {(uint)type}");
        }
    }

    private uint DiscardOrWriteZeroes(GuestMemory memory, ReadOnlySpan<VirtqBuffer> buffers, VirtioBlkRequestType type, VirtioBlkFeatures acked, ulong dataOut, ulong statusAddress, ushort head)
    {
        bool discard = type == VirtioBlkRequestType.Discard;
        VirtioBlkFeatures needed = discard ? VirtioBlkFeatures.Discard : VirtioBlkFeatures.WriteZeroes;
        if ((acked & needed) == 0)
        {
            return Finish(memory, statusAddress, VirtioBlkStatus.Unsupported, 0, head, $"{type} without {needed} negotiated");
        }

        if (!_image.IsWritable)
        {
            return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, head, _image.IsReadOnly ? $"{type} on a read-only disk" : InactiveImage);
        }

        if (dataOut == 0 || dataOut % DiscardSegmentSize != 0 || dataOut / DiscardSegmentSize > MaxDiscardSegments)
        {
            return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, head, $"{type}: {dataOut} payload bytes is not 1 to {MaxDiscardSegments} segments of {DiscardSegmentSize}");
        }

        Span<byte> segment = stackalloc byte[DiscardSegmentSize];
        for (ulong s = 0; s < dataOut / DiscardSegmentSize; s++)
        {
            Gather(memory, buffers, HeaderSize + (s * DiscardSegmentSize), segment);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(segment);
            uint sectors = BinaryPrimitives.ReadUInt32LittleEndian(segment[8..]);
            var flags = (VirtioBlkDiscardFlags)BinaryPrimitives.ReadUInt32LittleEndian(segment[12..]);
            if ((discard && flags != VirtioBlkDiscardFlags.None) || (flags & ~VirtioBlkDiscardFlags.Unmap) != 0)
            {
                return Finish(memory, statusAddress, VirtioBlkStatus.Unsupported, 0, head, $"{type}: flags 0x{(uint)flags:x}");
            }

            if (sectors > MaxDiscardSectors)
            {
                return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, head, $"{type}: {sectors} sectors is more than {MaxDiscardSectors}");
            }

            if (!CheckRange(sector, (ulong)sectors * BlkImage.SectorSize, out string? why))
            {
                return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, head, $"{type}: {why}");
            }

            long offset = (long)(sector * BlkImage.SectorSize);
            long length = (long)sectors * BlkImage.SectorSize;
            Errno e = discard ? _image.Discard(offset, length) : _image.WriteZeroes(offset, length, (flags & VirtioBlkDiscardFlags.Unmap) != 0);
            if (e != Errno.None)
            {
                return Finish(memory, statusAddress, VirtioBlkStatus.IoError, 0, head, $"{type} at sector {sector}: {e}");
            }
        }

        return Finish(memory, statusAddress, VirtioBlkStatus.Ok, 0);
    }

    private bool IsWriteBack(VirtioBlkFeatures acked) => (acked & VirtioBlkFeatures.Flush) != 0 && _writeback;

    private bool CheckRange(ulong sector, ulong bytes, out string? why)
    {
        if (bytes % BlkImage.SectorSize != 0)
        {
            why = $"{bytes} bytes is not a whole number of sectors";
            return false;
        }

        ulong sectors = bytes / BlkImage.SectorSize;
        if (sector > _image.Sectors || sectors > _image.Sectors - sector)
        {
            why = $"sectors [{sector}, +{sectors}) are outside the disk of {_image.Sectors}";
            return false;
        }

        why = null;
        return true;
    }

    /// <summary>Writes the status byte and returns the used length (data bytes + the status byte).</summary>
    private uint Finish(GuestMemory memory, ulong statusAddress, VirtioBlkStatus status, uint dataBytes, ushort head = 0, string? why = null)
    {
        if (status != VirtioBlkStatus.Ok)
        {
            LogBad(head, why ?? status.ToString());
        }

        memory.Write(statusAddress, (byte)status);
        return dataBytes + 1;
    }

    private uint Bad(ushort head, string why)
    {
        LogBad(head, why);
        return 0;
    }

    private void LogBad(ushort head, string why)
    {
        Interlocked.Increment(ref _badRequests);
        _logger.LogWarning("request {Head}: {Reason}", head, why);
    }

    private static ulong LastWritableByte(ReadOnlySpan<VirtqBuffer> buffers)
    {
        for (int i = buffers.Length - 1; i >= 0; i--)
        {
            if (buffers[i].IsWriteOnly && buffers[i].Length > 0)
            {
                return buffers[i].Address + buffers[i].Length - 1;
            }
        }

        throw new System.Diagnostics.UnreachableException("the caller checked that a writable byte exists");
    }

    /// <summary>Copies readable bytes from stream offset <paramref name="skip"/> into <paramref name="destination"/> (the caller checked the length).</summary>
    private static void Gather(GuestMemory memory, ReadOnlySpan<VirtqBuffer> buffers, ulong skip, Span<byte> destination)
    {
        foreach (VirtqBuffer b in buffers)
        {
            if (destination.IsEmpty || b.IsWriteOnly)
            {
                return;
            }

            if (skip >= b.Length)
            {
                skip -= b.Length;
                continue;
            }

            int n = (int)Math.Min((ulong)destination.Length, b.Length - skip);
            memory.Read(b.Address + skip, destination[..n]);
            destination = destination[n..];
            skip = 0;
        }
    }

    /// <summary>Copies <paramref name="source"/> into the writable buffers from their start (the caller checked the length).</summary>
    private static void Scatter(GuestMemory memory, ReadOnlySpan<VirtqBuffer> buffers, ReadOnlySpan<byte> source)
    {
        foreach (VirtqBuffer b in buffers)
        {
            if (source.IsEmpty)
            {
                return;
            }

            if (!b.IsWriteOnly)
            {
                continue;
            }

            int n = (int)Math.Min((ulong)source.Length, b.Length);
            memory.Write(b.Address, source[..n]);
            source = source[n..];
        }
    }

    /// <summary>Logs the first <paramref name="bytes"/> of the writable buffers in the dirty log (migration).</summary>
    private static void MarkDirty(GuestMemory memory, ReadOnlySpan<VirtqBuffer> buffers, ulong bytes)
    {
        if (memory.DirtyLog is null)
        {
            return;
        }

        foreach (VirtqBuffer b in buffers)
        {
            if (bytes == 0)
            {
                return;
            }

            if (b.IsWriteOnly)
            {
                ulong n = Math.Min(bytes, b.Length);
                memory.MarkDirty(b.Address, n);
                bytes -= n;
            }
        }
    }

    /// <summary>
    /// Fills the workspace's iovecs with <paramref name="bytes"/> bytes of the readable (or writable)
    /// stream after <paramref name="skip"/> bytes, splitting buffers at region boundaries.
    /// </summary>
    private static bool BuildIovecs(GuestMemory memory, ReadOnlySpan<VirtqBuffer> buffers, bool writableOnly, ulong skip, ulong bytes, Workspace ws, out int count)
    {
        count = 0;
        foreach (VirtqBuffer b in buffers)
        {
            if (bytes == 0)
            {
                break;
            }

            if (b.IsWriteOnly != writableOnly)
            {
                continue;
            }

            if (skip >= b.Length)
            {
                skip -= b.Length;
                continue;
            }

            ulong address = b.Address + skip;
            ulong left = Math.Min(bytes, b.Length - skip);
            skip = 0;
            bytes -= left;
            while (left > 0)
            {
                if (count == MaxIovecs)
                {
                    return false;
                }

                ulong chunk = Math.Min(left, RegionBytesFrom(memory, address));
                Span<byte> span = memory.GetSpan(address, (int)chunk);

                // SAFETY: the span lies in a mapping of the snapshot the queue holds while this request is served.
                ws.Iovecs[count].iov_base = Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
                ws.Iovecs[count].iov_len = (nuint)chunk;
                count++;
                address += chunk;
                left -= chunk;
            }
        }

        return true;
    }

    /// <summary>Bytes from <paramref name="address"/> to the end of its region (at most 1 GiB per iovec); the chain's buffers were validated as mapped.</summary>
    private static ulong RegionBytesFrom(GuestMemory memory, ulong address)
    {
        IReadOnlyList<GuestMemoryRegion> regions = memory.Regions;
        for (int i = 0; i < regions.Count; i++)
        {
            GuestMemoryRegion r = regions[i];
            if (address >= r.GuestPhysicalAddress && address <= r.LastGuestPhysicalAddress)
            {
                return Math.Min(r.LastGuestPhysicalAddress - address + 1, 1UL << 30);
            }
        }

        throw new GuestMemoryException(GuestMemoryError.AddressNotMapped, address, 1);
    }

    /// <summary>Per-worker scratch: the chain's buffers and the iovec array, allocated once.</summary>
    private sealed class Workspace : IDisposable
    {
        public Workspace(int maxChain)
        {
            Buffers = new VirtqBuffer[maxChain];
            Iovecs = (Interop.iovec*)NativeMemory.AllocZeroed((nuint)MaxIovecs, (nuint)sizeof(Interop.iovec));
        }

        public VirtqBuffer[] Buffers { get; }

        public Interop.iovec* Iovecs { get; private set; }

        public void Dispose()
        {
            NativeMemory.Free(Iovecs);
            Iovecs = null;
        }
    }
}
