using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Config;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.IO;
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

    /// <summary>The device event of worker 0's completion eventfd (worker t uses this + t): above the queues and the exit event.</summary>
    private const int CompletionEventBase = 1 << 20;

    /// <summary><c>seg_max</c>: segments per request (QEMU's default queue size 128, minus header and status).</summary>
    public const uint SegmentsPerRequest = 126;

    /// <summary><c>size_max</c>: bytes per segment.</summary>
    public const uint SegmentSizeLimit = 1 << 20;

    /// <summary>Sectors per DISCARD / WRITE_ZEROES segment.</summary>
    public const uint MaxDiscardSectors = 1 << 22;

    /// <summary>DISCARD / WRITE_ZEROES segments per request.</summary>
    public const uint MaxDiscardSegments = 1;

    private const ulong LogAllFeature = 1UL << 26;
    private const string InactiveImage = "write while the image is inactive (another daemon may write it: the destination of a finished migration, or this daemon's incoming migration has not started its rings)";

    private const int BounceSize = 64 << 10;
    private const int ZeroChunk = 64 << 10;
    private const int BufferedFile = 0;
    private const int DirectFile = 1;
    private const int Ok = (int)VirtioBlkStatus.Ok;

    private readonly BlkImage _image;
    private readonly ILogger _logger;
    private readonly byte[] _id = new byte[VirtioBlkRequest.IdBytes];
    private readonly Workspace[] _workspaces;
    private readonly byte* _zeroes;
    private readonly IReadOnlyList<IReadOnlyList<int>> _groups;
    private readonly VirtioConfigSpace _config;
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
    /// <param name="io">The I/O engine: io_uring, or synchronous calls on I/O threads.</param>
    /// <param name="ioThreads">I/O threads per worker for <see cref="BlkIoMode.Threads"/>.</param>
    /// <param name="latency">A simulated slow disk: each I/O operation is held a random 0 to this long before it starts and again after it completes (zero: off).</param>
    public VirtioBlkDevice(BlkImage image, int queues, int threads, string serial, ILogger logger, BlkIoMode io = BlkIoMode.Uring, int ioThreads = 16, TimeSpan latency = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(queues, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, queues);
        if (Encoding.ASCII.GetByteCount(serial) > VirtioBlkRequest.IdBytes || serial.Any(c => c > 0x7f))
        {
            throw new ArgumentException($"the serial must be at most {VirtioBlkRequest.IdBytes} ASCII characters: '{serial}'", nameof(serial));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(latency, TimeSpan.Zero);
        _image = image;
        _logger = logger;
        Latency = latency;
        Encoding.ASCII.GetBytes(serial, _id);
        QueueCount = queues;
        // Queue q is served by worker q % threads.
        _groups = [.. Enumerable.Range(0, threads).Select(t => Enumerable.Range(0, queues).Where(q => q % threads == t).ToArray())];

        _zeroes = (byte*)NativeMemory.AlignedAlloc(ZeroChunk, 4096);
        new Span<byte>(_zeroes, ZeroChunk).Clear();
        _workspaces = new Workspace[threads];
        try
        {
            for (int t = 0; t < threads; t++)
            {
                _workspaces[t] = new Workspace(this, t, io, ioThreads);
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        IoMode = _workspaces[0].EngineDescription;
        _config = CreateConfigSpace();
    }

    /// <summary>The simulated latency on each side of an I/O operation (zero: none).</summary>
    public TimeSpan Latency { get; }

    /// <summary>How requests are served, for the log (io_uring, or the thread fallback and why).</summary>
    public string IoMode { get; }

    /// <inheritdoc/>
    public int QueueCount { get; }

    /// <inheritdoc/>
    public ushort MaxQueueSize => QueueSizeLimit;

    /// <summary>The polling window after each event (zero: notification-driven only).</summary>
    public TimeSpan PollingTime { get; init; }

    /// <inheritdoc/>
    public TimeSpan GetPollingTime(int workerIndex) => PollingTime;

    /// <inheritdoc/>
    public ulong Features
    {
        get
        {
            VirtioBlkFeatures f = VirtioBlkFeatures.SizeMax | VirtioBlkFeatures.SegMax | VirtioBlkFeatures.BlockSize | VirtioBlkFeatures.Flush
                | VirtioBlkFeatures.ConfigWce | VirtioBlkFeatures.MultiQueue;
            f |= _image.IsReadOnly ? VirtioBlkFeatures.ReadOnly : VirtioBlkFeatures.Discard | VirtioBlkFeatures.WriteZeroes;
            return (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex | VirtioFeatures.RingIndirectDescriptors | VirtioFeatures.RingPacked) | (ulong)f;
        }
    }

    /// <inheritdoc/>
    /// <inheritdoc/>
    public IReadOnlyList<IReadOnlyList<int>> QueuesPerWorker => _groups;

    /// <summary>Requests answered IOERR/UNSUPP or dropped as malformed since start.</summary>
    public long BadRequests => Interlocked.Read(ref _badRequests);

    /// <inheritdoc/>
    public void AcknowledgeFeatures(ulong features) => Volatile.Write(ref _acked, features);

    /// <inheritdoc/>
    public VirtioConfigSpace ConfigSpace => _config;

    /// <summary>
    /// Takes the image's new size if it grew (SIGHUP, after <c>truncate -s</c> or <c>lvextend</c>): the capacity in
    /// the config space changes, and the daemon tells the driver, which resizes the disk
    /// ("capacity change" in the guest's kernel log).
    /// </summary>
    public void RefreshCapacity()
    {
        if (!_image.TryGrow(out long old, out long now))
        {
            _logger.LogWarning("the image is {Now} bytes, the disk stays at {Old} bytes (it only grows)", now, old);
            return;
        }

        _config.Update((ref VirtioBlkConfig c) => c.Capacity = (ulong)now / BlkImage.SectorSize);
        _logger.LogInformation("disk grew from {Old} to {Now} bytes", old, now);
    }

    private VirtioConfigSpace CreateConfigSpace()
    {
        bool rw = !_image.IsReadOnly;
        var space = VirtioConfigSpace.Create(new VirtioBlkConfig
        {
            Capacity = _image.Sectors,
            SizeMax = SegmentSizeLimit,
            SegMax = SegmentsPerRequest,
            BlockSize = BlkImage.SectorSize,
            Writeback = 1,
            NumQueues = (ushort)QueueCount,
            MaxDiscardSectors = rw ? MaxDiscardSectors : 0,
            MaxDiscardSegments = rw ? MaxDiscardSegments : 0,
            DiscardSectorAlignment = 8,
            MaxWriteZeroesSectors = rw ? MaxDiscardSectors : 0,
            MaxWriteZeroesSegments = rw ? MaxDiscardSegments : 0,
            WriteZeroesMayUnmap = rw ? (byte)1 : (byte)0,
        });
        return space.AllowWrites(VirtioBlkConfig.WritebackOffset, 1, config =>
        {
            byte wce = config[VirtioBlkConfig.WritebackOffset];
            if (wce > 1)
            {
                throw new ArgumentException($"writeback is 0 (write-through) or 1 (write-back), not {wce}");
            }

            _writeback = wce == 1;
            _logger.LogInformation("write cache: {Mode}", _writeback ? "write-back" : "write-through");
        });
    }

    /// <inheritdoc/>
    public void Reset()
    {
        _writeback = true;
        _config.Update(VirtioBlkConfig.WritebackOffset, [1]);
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
    public void OnWorkersStarted(IReadOnlyList<VhostUserWorker> workers)
    {
        for (int t = 0; t < workers.Count; t++)
        {
            if (_workspaces[t]?.Engine.CompletionEvent is { } completions)
            {
                workers[t].RegisterListener(completions, VringEpollEvents.In | VringEpollEvents.EdgeTriggered, (ulong)(CompletionEventBase + t));
            }
        }
    }

    /// <inheritdoc/>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        if (deviceEvent >= CompletionEventBase)
        {
            // The worker's io_uring finished operations (or, while the daemon stops a ring, the
            // control thread delivers this event with the worker parked).
            _workspaces[workerIndex]!.Engine.Reap();
            return;
        }

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

        Workspace ws = _workspaces[workerIndex];
        try
        {
            do
            {
                vring.DisableNotification();
                while (vring.TryPopDescriptorChain(out DescriptorChain chain))
                {
                    try
                    {
                        Process(vring, chain, ws);
                    }
                    catch (Exception e) when (e is GuestMemoryException or VirtqueueException)
                    {
                        // Not expected (the chain's buffers were validated), but never let one request stop the queue.
                        LogBad(chain.Head, e.Message);
                        vring.Complete(chain, 0);
                    }
                }
            }
            while (vring.EnableNotification());
        }
        finally
        {
            // One submission for the whole batch; what the kernel finished inline (page-cache
            // reads, for example) completes now, without waiting for the eventfd.
            ws.Engine.Kick();
            ws.Engine.Reap();
        }
    }

    /// <summary>Stops the I/O engines, frees the requests and closes the image.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (Workspace? ws in _workspaces)
        {
            ws?.Dispose();
        }

        NativeMemory.AlignedFree(_zeroes);
        _image.Dispose();
    }

    /// <summary>Parses one request and completes it at once (bad requests, GET_ID) or starts its I/O.</summary>
    private void Process(Vring vring, DescriptorChain chain, Workspace ws)
    {
        VirtioBlkRequest request;
        VirtioBlkRequestError error;
        try
        {
            error = VirtioBlkRequest.Parse(chain, out request);
        }
        catch (VirtqueueException e)
        {
            // No status byte can be trusted in an invalid chain: return it empty.
            LogBad(chain.Head, e.Message);
            vring.Complete(chain, 0);
            return;
        }

        if (error == VirtioBlkRequestError.NoStatusByte)
        {
            LogBad(chain.Head, VirtioBlkRequest.Describe(error));
            vring.Complete(chain, 0);
            return;
        }

        BlkRequest r = ws.Rent();
        r.Vring = vring;
        r.Request = request;
        r.Sector = request.Sector;
        if (error != VirtioBlkRequestError.None)
        {
            Finish(ws, r, VirtioBlkRequest.ToStatus(error), VirtioBlkRequest.Describe(error));
            return;
        }

        VirtioBlkRequestType type = request.Type;
        switch (type)
        {
            case VirtioBlkRequestType.In:
            case VirtioBlkRequestType.Out:
            {
                bool write = type == VirtioBlkRequestType.Out;
                ulong bytes = write ? request.DataOutLength : request.DataInLength;
                if (write && !_image.IsWritable)
                {
                    Finish(ws, r, VirtioBlkStatus.IoError, _image.IsReadOnly ? "write to a read-only disk" : InactiveImage);
                    return;
                }

                if ((error = request.CheckTransfer(_image.Sectors)) != VirtioBlkRequestError.None)
                {
                    Finish(ws, r, VirtioBlkRequest.ToStatus(error), $"{VirtioBlkRequest.Describe(error)}: {bytes} bytes from sector {request.Sector} on a disk of {_image.Sectors}");
                    return;
                }

                var guest = new Span<Iovec>(r.GuestIovecs, BlkRequest.MaxIovecs);
                r.GuestIovecCount = write ? r.Request.Data.GetIovecs(guest, bytes, out ulong described) : r.Request.Writer.GetIovecs(guest, bytes, out described);
                if (described != bytes)
                {
                    Finish(ws, r, VirtioBlkStatus.IoError, $"more than {BlkRequest.MaxIovecs} segments");
                    return;
                }

                if (bytes == 0)
                {
                    Finish(ws, r, VirtioBlkStatus.Ok);
                    return;
                }

                r.Stage = write ? BlkStage.Write : BlkStage.Read;
                r.Operation = write ? BlkOperation.Writev : BlkOperation.Readv;
                r.Offset = (long)(request.Sector * VirtioBlkRequest.SectorSize);
                r.Remaining = (long)bytes;
                PlaceTransfer(ws, r, write);
                ws.Engine.Start(r);
                return;
            }

            case VirtioBlkRequestType.Flush:
                if (_image.IsReadOnly)
                {
                    Finish(ws, r, VirtioBlkStatus.Ok);
                    return;
                }

                r.Stage = BlkStage.Flush;
                StartFlush(ws, r);
                return;

            case VirtioBlkRequestType.GetId:
            {
                int n = (int)Math.Min(request.DataInLength, VirtioBlkRequest.IdBytes);
                r.Request.Writer.WriteExactly(_id.AsSpan(0, n));
                Finish(ws, r, VirtioBlkStatus.Ok);
                return;
            }

            case VirtioBlkRequestType.Discard or VirtioBlkRequestType.WriteZeroes:
                StartDiscardOrWriteZeroes(ws, r, type);
                return;

            default:
                Finish(ws, r, VirtioBlkStatus.Unsupported, $"request type {(uint)type}");
                return;
        }
    }

    private void StartDiscardOrWriteZeroes(Workspace ws, BlkRequest r, VirtioBlkRequestType type)
    {
        bool discard = type == VirtioBlkRequestType.Discard;
        VirtioBlkFeatures needed = discard ? VirtioBlkFeatures.Discard : VirtioBlkFeatures.WriteZeroes;
        if ((Volatile.Read(ref _acked) & (ulong)needed) == 0)
        {
            Finish(ws, r, VirtioBlkStatus.Unsupported, $"{type} without {needed} negotiated");
            return;
        }

        if (!_image.IsWritable)
        {
            Finish(ws, r, VirtioBlkStatus.IoError, _image.IsReadOnly ? $"{type} on a read-only disk" : InactiveImage);
            return;
        }

        // MaxDiscardSegments is 1: one segment per request.
        VirtioBlkDiscardWriteZeroes segment = default;
        VirtioBlkRequestError error = r.Request.GetSegmentCount(MaxDiscardSegments, out _);
        if (error == VirtioBlkRequestError.None)
        {
            error = r.Request.ReadSegment(MaxDiscardSectors, _image.Sectors, out segment);
        }

        r.Sector = segment.Sector;
        if (error != VirtioBlkRequestError.None)
        {
            Finish(ws, r, VirtioBlkRequest.ToStatus(error), $"{type}: {VirtioBlkRequest.Describe(error)} ({r.Request.DataOutLength} payload bytes; sector {segment.Sector}, {segment.NumSectors} sectors, flags 0x{(uint)segment.Flags:x})");
            return;
        }

        r.Offset = (long)(segment.Sector * VirtioBlkRequest.SectorSize);
        r.Remaining = (long)segment.NumSectors * VirtioBlkRequest.SectorSize;
        if (r.Remaining == 0)
        {
            Finish(ws, r, VirtioBlkStatus.Ok);
            return;
        }

        r.Operation = BlkOperation.Fallocate;
        r.File = BufferedFile;
        if (discard)
        {
            r.Stage = BlkStage.Discard;
            r.Mode = FallocateMode.PunchHole | FallocateMode.KeepSize;
        }
        else
        {
            // Unmap allowed: try ZERO_RANGE, then a punched hole; otherwise ZERO_RANGE, then written zeroes.
            r.Stage = BlkStage.ZeroRange;
            r.Mode = FallocateMode.ZeroRange | FallocateMode.KeepSize;
            r.IovecCount = (segment.Flags & VirtioBlkDiscardFlags.Unmap) != 0 ? 1 : 0;
        }

        ws.Engine.Start(r);
    }

    /// <summary>
    /// A transfer's result (on the worker with io_uring, or on an I/O thread): continues a short
    /// transfer, retries on the buffered descriptor when O_DIRECT refuses, flushes after a
    /// write-through write, falls back for WRITE_ZEROES, or finishes the request. An image error
    /// is IOERR for the guest, never an exception.
    /// </summary>
    private void OnIoComplete(Workspace ws, BlkRequest r, int result)
    {
        try
        {
            Advance(ws, r, result);
        }
        catch (Exception e) when (e is GuestMemoryException or VirtqueueException)
        {
            // The chain went stale under the request (not expected: its memory stays mapped): IOERR, and it still completes.
            Finish(ws, r, VirtioBlkStatus.IoError, e.Message);
        }
        catch (InvalidOperationException e)
        {
            // Vring.Complete refused (a chain completed twice would be a bug here): never take the I/O thread down.
            _logger.LogError("completing a request failed: {Reason}", e.Message);
        }
    }

    private void Advance(Workspace ws, BlkRequest r, int result)
    {
        int error = result < 0 ? -result : Errno.None;
        switch (r.Stage)
        {
            case BlkStage.Read or BlkStage.Write:
            {
                bool write = r.Stage == BlkStage.Write;
                if (error == Errno.EINVAL && r.File == DirectFile)
                {
                    // The file system refused this O_DIRECT transfer (a stricter alignment): buffered I/O instead.
                    ReleaseBounce(ws, r);
                    r.File = BufferedFile;
                    CopyGuestIovecs(r);
                    ws.Engine.Start(r);
                    return;
                }

                if (error != Errno.None || result == 0)
                {
                    Finish(ws, r, VirtioBlkStatus.IoError, $"{(write ? "write" : "read")} at sector {r.Sector}: {(result == 0 ? "end of file (the image shrank)" : Errno.Describe(error))}");
                    return;
                }

                r.Remaining -= result;
                if (r.Remaining > 0)
                {
                    r.Offset += result;
                    r.Advance((nuint)result);
                    ws.Engine.Start(r);
                    return;
                }

                if (!write)
                {
                    if (r.Bounce is not null)
                    {
                        CopyFromBounce(r);
                    }

                    // Declares the data written, which logs it while a migration runs.
                    r.Request.Writer.Commit(r.Request.Writer.Remaining - 1);
                }

                ReleaseBounce(ws, r);
                if (write && !IsWriteBack(Volatile.Read(ref _acked)))
                {
                    r.Stage = BlkStage.WriteFlush;
                    StartFlush(ws, r);
                    return;
                }

                Finish(ws, r, VirtioBlkStatus.Ok);
                return;
            }

            case BlkStage.Flush or BlkStage.WriteFlush:
                Finish(ws, r, error == Errno.None ? VirtioBlkStatus.Ok : VirtioBlkStatus.IoError, error == Errno.None ? null : $"flush: {Errno.Describe(error)}");
                return;

            case BlkStage.Discard:
                // A hint: success when the file system cannot punch holes.
                bool ok = error is Errno.None or Errno.EOPNOTSUPP or Errno.ENOSYS;
                Finish(ws, r, ok ? VirtioBlkStatus.Ok : VirtioBlkStatus.IoError, ok ? null : $"discard at sector {r.Sector}: {Errno.Describe(error)}");
                return;

            case BlkStage.ZeroRange or BlkStage.ZeroPunch:
                if (error == Errno.None)
                {
                    Finish(ws, r, VirtioBlkStatus.Ok);
                }
                else if (error is not (Errno.EOPNOTSUPP or Errno.ENOSYS or Errno.EINVAL))
                {
                    Finish(ws, r, VirtioBlkStatus.IoError, $"write zeroes at sector {r.Sector}: {Errno.Describe(error)}");
                }
                else if (r.Stage == BlkStage.ZeroRange && r.IovecCount == 1)
                {
                    r.Stage = BlkStage.ZeroPunch;
                    r.Mode = FallocateMode.PunchHole | FallocateMode.KeepSize;
                    ws.Engine.Start(r);
                }
                else
                {
                    r.Stage = BlkStage.ZeroWrite;
                    StartZeroWrite(ws, r);
                }

                return;

            case BlkStage.ZeroWrite:
                if (error != Errno.None || result == 0)
                {
                    Finish(ws, r, VirtioBlkStatus.IoError, $"write zeroes at sector {r.Sector}: {(result == 0 ? "nothing written" : Errno.Describe(error))}");
                    return;
                }

                r.Offset += result;
                r.Remaining -= result;
                if (r.Remaining > 0)
                {
                    StartZeroWrite(ws, r);
                }
                else
                {
                    Finish(ws, r, VirtioBlkStatus.Ok);
                }

                return;
        }
    }

    private void StartFlush(Workspace ws, BlkRequest r)
    {
        r.Operation = BlkOperation.Fdatasync;
        r.File = BufferedFile;
        ws.Engine.Start(r);
    }

    private void StartZeroWrite(Workspace ws, BlkRequest r)
    {
        r.Operation = BlkOperation.Writev;
        r.File = BufferedFile;
        r.Iovecs[0] = new Iovec((nint)_zeroes, (nuint)Math.Min(r.Remaining, ZeroChunk));
        r.IovecCount = 1;
        ws.Engine.Start(r);
    }

    /// <summary>
    /// Chooses the descriptor and buffers of a transfer: O_DIRECT straight on guest memory when
    /// every buffer is sector-aligned; O_DIRECT through a pooled aligned bounce buffer when one is
    /// not (up to 64 KiB); the buffered descriptor otherwise.
    /// </summary>
    private void PlaceTransfer(Workspace ws, BlkRequest r, bool write)
    {
        r.File = _image.IsDirect ? DirectFile : BufferedFile;
        CopyGuestIovecs(r);
        if (!_image.IsDirect || IsAligned(r.GuestIovecs, r.GuestIovecCount))
        {
            return;
        }

        if (r.Remaining > BounceSize || (r.Bounce = ws.RentBounce()) is null)
        {
            r.File = BufferedFile;
            return;
        }

        if (write)
        {
            byte* to = r.Bounce;
            for (int i = 0; i < r.GuestIovecCount; i++)
            {
                Iovec v = r.GuestIovecs[i];
                new ReadOnlySpan<byte>((void*)v.Base, (int)v.Length).CopyTo(new Span<byte>(to, (int)v.Length));
                to += v.Length;
            }
        }

        r.Iovecs[0] = new Iovec((nint)r.Bounce, (nuint)r.Remaining);
        r.IovecCount = 1;
    }

    private static void CopyGuestIovecs(BlkRequest r)
    {
        new Span<Iovec>(r.GuestIovecs, r.GuestIovecCount).CopyTo(new Span<Iovec>(r.Iovecs, BlkRequest.MaxIovecs));
        r.IovecCount = r.GuestIovecCount;
        if (r.Stage is BlkStage.Read or BlkStage.Write)
        {
            // A retry restarts the whole transfer.
            nuint total = 0;
            for (int i = 0; i < r.GuestIovecCount; i++)
            {
                total += r.GuestIovecs[i].Length;
            }

            r.Offset -= (long)total - r.Remaining;
            r.Remaining = (long)total;
        }
    }

    private static void CopyFromBounce(BlkRequest r)
    {
        byte* from = r.Bounce;
        for (int i = 0; i < r.GuestIovecCount; i++)
        {
            Iovec v = r.GuestIovecs[i];
            new ReadOnlySpan<byte>(from, (int)v.Length).CopyTo(new Span<byte>((void*)v.Base, (int)v.Length));
            from += v.Length;
        }
    }

    private static void ReleaseBounce(Workspace ws, BlkRequest r)
    {
        if (r.Bounce is not null)
        {
            ws.ReturnBounce(r.Bounce);
            r.Bounce = null;
        }
    }

    private static bool IsAligned(Iovec* iov, int count)
    {
        for (int i = 0; i < count; i++)
        {
            if ((((nuint)iov[i].Base | iov[i].Length) & (BlkImage.SectorSize - 1)) != 0)
            {
                return false;
            }
        }

        return true;
    }

    private bool IsWriteBack(ulong acked) => (acked & (ulong)VirtioBlkFeatures.Flush) != 0 && _writeback;

    /// <summary>
    /// Writes the status byte into the last writable byte through the chain's writer (which logs
    /// it while a migration runs) and completes the chain with every writable byte as its used
    /// length (QEMU's in_len); the request goes back to the pool. Always completes the chain.
    /// </summary>
    private void Finish(Workspace ws, BlkRequest r, VirtioBlkStatus status, string? why = null)
    {
        DescriptorChain chain = r.Request.Chain;
        if (status != VirtioBlkStatus.Ok)
        {
            LogBad(chain.Head, why ?? status.ToString());
        }

        Vring vring = r.Vring!;
        uint used = r.Request.UsedLength;
        if (!r.Request.TryWriteStatus(status))
        {
            LogBad(chain.Head, "the status byte cannot be written (the chain went bad)");
            used = 0;
        }

        ReleaseBounce(ws, r);
        ws.Return(r);
        vring.Complete(chain, used);
    }

    private void LogBad(ushort head, string why)
    {
        Interlocked.Increment(ref _badRequests);
        _logger.LogWarning("request {Head}: {Reason}", head, why);
    }

    /// <summary>
    /// Per worker: the pool of requests (grown while
    /// warming up, then reused), the pool of aligned bounce buffers, and the I/O engine.
    /// </summary>
    private sealed class Workspace : IDisposable
    {
        private readonly Lock _gate = new();
        private readonly List<BlkRequest> _all = [];
        private readonly Stack<int> _free = new(QueueSizeLimit);
        private readonly Stack<nint> _bounces = new();
        private int _bounceCount;
        private BlkRequest[] _table = new BlkRequest[QueueSizeLimit];

        public Workspace(VirtioBlkDevice device, int worker, BlkIoMode mode, int ioThreads)
        {
            Action<BlkRequest, int> onComplete = (r, res) => device.OnIoComplete(this, r, res);
            string description = string.Empty;
            if (device.Latency > TimeSpan.Zero)
            {
                Engine = new LatencyEngine(device.Latency, onComplete, worker, inner => CreateEngine(device, worker, mode, ioThreads, inner, out description));
                EngineDescription = $"{description}, each operation held a random 0-{device.Latency.TotalMilliseconds:0} ms before and after (--latency)";
            }
            else
            {
                Engine = CreateEngine(device, worker, mode, ioThreads, onComplete, out description);
                EngineDescription = description;
            }
        }

        public IBlkEngine Engine { get; }

        public string EngineDescription { get; }

        private IBlkEngine CreateEngine(VirtioBlkDevice device, int worker, BlkIoMode mode, int ioThreads, Action<BlkRequest, int> onComplete, out string description)
        {
            SafeFileHandle buffered = device._image.BufferedHandle;
            SafeFileHandle? direct = device._image.DirectHandle;
            if (mode == BlkIoMode.Uring)
            {
                if (IoUring.TryCreate(QueueSizeLimit, out IoUring? ring, out VhostException? error))
                {
                    try
                    {
                        // An image in memory: io_uring has no non-blocking path for shmem and
                        // hands every read and write to a kernel worker thread (two context
                        // switches per request); inline on the daemon worker they cost a copy.
                        bool inline = device._image.IsInMemory;
                        description = inline
                            ? "io_uring (one ring per worker, completions reaped on the worker; reads and writes of this in-memory image run inline on the worker)"
                            : "io_uring (one ring per worker, completions reaped on the worker)";
                        return new UringEngine(ring, buffered, direct, Lookup, onComplete, inline);
                    }
                    catch (VhostException e)
                    {
                        ring.Dispose();
                        error = e;
                    }
                }

                description = $"io_uring unavailable ({error.Message}: kernel.io_uring_disabled, seccomp or an old kernel), so {ioThreads} I/O threads per worker with synchronous preadv/pwritev";
            }
            else
            {
                description = $"{ioThreads} I/O threads per worker with synchronous preadv/pwritev (--io threads)";
            }

            return new ThreadEngine(buffered, direct, onComplete, worker, ioThreads);
        }

        /// <summary>A free request (worker).</summary>
        public BlkRequest Rent()
        {
            lock (_gate)
            {
                if (_free.TryPop(out int id))
                {
                    return _table[id];
                }

                // More requests in flight than ever before on this worker (bounded by the rings' sizes).
                var r = new BlkRequest(_all.Count);
                if (_all.Count == _table.Length)
                {
                    Array.Resize(ref _table, _table.Length * 2);
                }

                _table[r.Id] = r;
                _all.Add(r);
                return r;
            }
        }

        /// <summary>Puts a finished request back (any thread).</summary>
        public void Return(BlkRequest r)
        {
            r.Clear();
            lock (_gate)
            {
                _free.Push(r.Id);
            }
        }

        public byte* RentBounce()
        {
            lock (_gate)
            {
                if (_bounces.TryPop(out nint b))
                {
                    return (byte*)b;
                }

                if (_bounceCount == QueueSizeLimit)
                {
                    return null;
                }

                _bounceCount++;
                return (byte*)NativeMemory.AlignedAlloc(BounceSize, 4096);
            }
        }

        public void ReturnBounce(byte* bounce)
        {
            lock (_gate)
            {
                _bounces.Push((nint)bounce);
            }
        }

        public void Dispose()
        {
            Engine?.Dispose();
            foreach (BlkRequest r in _all)
            {
                r.Dispose();
            }

            while (_bounces.TryPop(out nint b))
            {
                NativeMemory.AlignedFree((void*)b);
            }
        }

        private BlkRequest Lookup(int id)
        {
            lock (_gate)
            {
                return _table[id];
            }
        }
    }
}
