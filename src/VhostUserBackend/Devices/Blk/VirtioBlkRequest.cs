using System.Diagnostics.CodeAnalysis;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Devices.Blk;

/// <summary>
/// A virtio-blk request parsed from its descriptor chain (<c>struct virtio_blk_req</c>, VIRTIO 1.3
/// §5.2.6): the header, where the data is, and where the status byte goes.
/// </summary>
/// <remarks>
/// <para>The layout: a 16-byte <see cref="VirtioBlkRequestHeader"/> and the data the device reads
/// (OUT data, DISCARD segments) in device-readable buffers; then, in device-writable buffers, the
/// data the device writes (IN data, the GET_ID string) and last the status byte. How the bytes are
/// split over descriptors does not matter (VIRTIO_F_ANY_LAYOUT is implied by VERSION_1).</para>
/// <para><see cref="Parse"/> checks the framing; <see cref="CheckTransfer"/> and
/// <see cref="ReadSegment"/> check sectors against the capacity; the device checks what depends on
/// it (the type it supports, negotiated features, a read-only disk). Every check returns a
/// <see cref="VirtioBlkRequestError"/>, never throws for a guest's mistake, and allocates nothing;
/// <see cref="ToStatus"/> gives the status byte to answer with.</para>
/// <para>A mutable struct holding a <see cref="DescriptorChainReader"/> and a
/// <see cref="DescriptorChainWriter"/>: keep it in a local or a field and use <see cref="Data"/> and
/// <see cref="Writer"/> by reference. Valid while the chain is in flight.</para>
/// </remarks>
public struct VirtioBlkRequest
{
    /// <summary>The sector size of the protocol (<c>sector</c> units), whatever the device's block size.</summary>
    public const int SectorSize = 512;

    /// <summary>The length of the GET_ID string (<c>VIRTIO_BLK_ID_BYTES</c>); shorter ids end with a NUL.</summary>
    public const int IdBytes = 20;

    private DescriptorChainReader _data;
    private DescriptorChainWriter _writer;

    /// <summary>The chain the request came in (complete it with <see cref="UsedLength"/>, or 0 when <see cref="HasStatus"/> is false).</summary>
    public readonly DescriptorChain Chain { get; private init; }

    /// <summary>The request type from the header (default when the header is missing).</summary>
    public readonly VirtioBlkRequestType Type { get; private init; }

    /// <summary>The first sector from the header (IN and OUT).</summary>
    public readonly ulong Sector { get; private init; }

    /// <summary>The device-readable bytes after the header: OUT data, or DISCARD / WRITE_ZEROES segments.</summary>
    public readonly ulong DataOutLength { get; private init; }

    /// <summary>The device-writable bytes before the status byte: room for IN data or the GET_ID string.</summary>
    public readonly ulong DataInLength { get; private init; }

    /// <summary>
    /// The used length to complete the chain with: every device-writable byte, data and status
    /// (what QEMU reports too; drivers read the status byte from its fixed place).
    /// </summary>
    public readonly uint UsedLength { get; private init; }

    /// <summary>Whether the chain has a status byte to answer in (false only for <see cref="VirtioBlkRequestError.NoStatusByte"/>).</summary>
    public readonly bool HasStatus => UsedLength != 0;

    /// <summary>The device-readable data after the header, as a reader (positioned at its first byte).</summary>
    [UnscopedRef]
    public ref DescriptorChainReader Data => ref _data;

    /// <summary>
    /// The device-writable bytes, as a writer: the data, then the status byte. A device writes IN
    /// data through it (or describes it with <see cref="DescriptorChainWriter.GetIovecs"/> and
    /// <see cref="DescriptorChainWriter.Commit"/>s it), then <see cref="TryWriteStatus"/>.
    /// </summary>
    [UnscopedRef]
    public ref DescriptorChainWriter Writer => ref _writer;

    /// <summary>
    /// Parses a popped chain: reads the header and measures the data and status areas. Allocates
    /// nothing. On <see cref="VirtioBlkRequestError.HeaderTooShort"/> the request still carries its
    /// status byte (answer IOERR); on <see cref="VirtioBlkRequestError.NoStatusByte"/> it has none.
    /// </summary>
    /// <param name="chain">A chain from <see cref="Vring.TryPopDescriptorChain"/>.</param>
    /// <param name="request">The request, when the chain has a status byte; otherwise one that only knows its chain.</param>
    /// <returns><see cref="VirtioBlkRequestError.None"/>, <see cref="VirtioBlkRequestError.NoStatusByte"/> or <see cref="VirtioBlkRequestError.HeaderTooShort"/>.</returns>
    /// <exception cref="VirtqueueException">The chain itself is invalid or stale (a bad descriptor, the reason says which): complete it with length 0.</exception>
    /// <exception cref="InvalidOperationException">A default chain, or the queue is not ready.</exception>
    public static VirtioBlkRequestError Parse(in DescriptorChain chain, out VirtioBlkRequest request)
    {
        DescriptorChainReader reader = chain.CreateReader();
        DescriptorChainWriter writer = chain.CreateWriter();
        ulong writable = writer.Remaining;
        if (writable == 0)
        {
            request = new VirtioBlkRequest { Chain = chain };
            return VirtioBlkRequestError.NoStatusByte;
        }

        ulong readable = reader.Remaining;
        if (readable < VirtioBlkRequestHeader.Size)
        {
            request = new VirtioBlkRequest { Chain = chain, UsedLength = (uint)writable, DataInLength = writable - 1 };
            request._writer = writer;
            return VirtioBlkRequestError.HeaderTooShort;
        }

        VirtioBlkRequestHeader header = reader.Read<VirtioBlkRequestHeader>();
        request = new VirtioBlkRequest
        {
            Chain = chain,
            Type = header.Type,
            Sector = header.Sector,
            DataOutLength = readable - VirtioBlkRequestHeader.Size,
            DataInLength = writable - 1,
            UsedLength = (uint)writable, // the writer refuses chains whose writable bytes pass 2^32 - 1
        };
        request._data = reader;
        request._writer = writer;
        return VirtioBlkRequestError.None;
    }

    /// <summary>
    /// Checks an IN or OUT request's data against the capacity: a whole number of sectors
    /// (<see cref="DataInLength"/> for IN, <see cref="DataOutLength"/> for OUT) from
    /// <see cref="Sector"/>, all inside the disk. Other types have no transfer: <see cref="VirtioBlkRequestError.None"/>.
    /// </summary>
    /// <param name="capacity">The disk's capacity in 512-byte sectors.</param>
    /// <returns><see cref="VirtioBlkRequestError.None"/>, <see cref="VirtioBlkRequestError.NotWholeSectors"/> or <see cref="VirtioBlkRequestError.OutOfRange"/>.</returns>
    public readonly VirtioBlkRequestError CheckTransfer(ulong capacity) => Type switch
    {
        VirtioBlkRequestType.In => CheckRange(Sector, DataInLength, capacity),
        VirtioBlkRequestType.Out => CheckRange(Sector, DataOutLength, capacity),
        _ => VirtioBlkRequestError.None,
    };

    /// <summary>Checks that <paramref name="bytes"/> from <paramref name="sector"/> are whole sectors inside a disk of <paramref name="capacity"/> sectors, without overflowing.</summary>
    /// <param name="sector">The first sector.</param>
    /// <param name="bytes">The length in bytes.</param>
    /// <param name="capacity">The capacity in 512-byte sectors.</param>
    /// <returns><see cref="VirtioBlkRequestError.None"/>, <see cref="VirtioBlkRequestError.NotWholeSectors"/> or <see cref="VirtioBlkRequestError.OutOfRange"/>.</returns>
    public static VirtioBlkRequestError CheckRange(ulong sector, ulong bytes, ulong capacity)
    {
        if (bytes % SectorSize != 0)
        {
            return VirtioBlkRequestError.NotWholeSectors;
        }

        ulong sectors = bytes / SectorSize;
        return sector > capacity || sectors > capacity - sector ? VirtioBlkRequestError.OutOfRange : VirtioBlkRequestError.None;
    }

    /// <summary>
    /// The number of segments of a DISCARD, WRITE_ZEROES or SECURE_ERASE request: its payload must
    /// be 1 to <paramref name="maxSegments"/> whole <see cref="VirtioBlkDiscardWriteZeroes"/>.
    /// </summary>
    /// <param name="maxSegments">The most segments the device takes (its <c>max_discard_seg</c> or <c>max_write_zeroes_seg</c>).</param>
    /// <param name="count">The number of segments; 0 on error.</param>
    /// <returns><see cref="VirtioBlkRequestError.None"/> or <see cref="VirtioBlkRequestError.BadSegmentCount"/>.</returns>
    public readonly VirtioBlkRequestError GetSegmentCount(uint maxSegments, out int count)
    {
        ulong n = DataOutLength / VirtioBlkDiscardWriteZeroes.Size;
        if (DataOutLength % VirtioBlkDiscardWriteZeroes.Size != 0 || n == 0 || n > maxSegments)
        {
            count = 0;
            return VirtioBlkRequestError.BadSegmentCount;
        }

        count = (int)n;
        return VirtioBlkRequestError.None;
    }

    /// <summary>
    /// Reads the next segment of a DISCARD, WRITE_ZEROES or SECURE_ERASE request from
    /// <see cref="Data"/> and checks it: the flags the request type allows (UNMAP on WRITE_ZEROES
    /// only), at most <paramref name="maxSectors"/> sectors, all inside the disk.
    /// Call <see cref="GetSegmentCount"/> first.
    /// </summary>
    /// <param name="maxSectors">The most sectors per segment (the device's <c>max_discard_sectors</c> or the like).</param>
    /// <param name="capacity">The capacity in 512-byte sectors.</param>
    /// <param name="segment">The segment as read (also on a validation error).</param>
    /// <returns><see cref="VirtioBlkRequestError.None"/>, <see cref="VirtioBlkRequestError.UnsupportedFlags"/>, <see cref="VirtioBlkRequestError.TooManySectors"/>, <see cref="VirtioBlkRequestError.OutOfRange"/>, or <see cref="VirtioBlkRequestError.BadSegmentCount"/> when no whole segment remains.</returns>
    /// <exception cref="VirtqueueException">The chain changed or went stale under the reader.</exception>
    public VirtioBlkRequestError ReadSegment(uint maxSectors, ulong capacity, out VirtioBlkDiscardWriteZeroes segment)
    {
        if (_data.Remaining < VirtioBlkDiscardWriteZeroes.Size)
        {
            segment = default;
            return VirtioBlkRequestError.BadSegmentCount;
        }

        segment = _data.Read<VirtioBlkDiscardWriteZeroes>();
        VirtioBlkDiscardFlags allowed = Type == VirtioBlkRequestType.WriteZeroes ? VirtioBlkDiscardFlags.Unmap : VirtioBlkDiscardFlags.None;
        if ((segment.Flags & ~allowed) != 0)
        {
            return VirtioBlkRequestError.UnsupportedFlags;
        }

        if (segment.NumSectors > maxSectors)
        {
            return VirtioBlkRequestError.TooManySectors;
        }

        return CheckRange(segment.Sector, (ulong)segment.NumSectors * SectorSize, capacity);
    }

    /// <summary>
    /// Writes the status byte into the last device-writable byte (through <see cref="Writer"/>, so it
    /// is logged while a migration runs). Then complete the chain with <see cref="UsedLength"/>.
    /// </summary>
    /// <param name="status">The status.</param>
    /// <returns>False when the request has no status byte or the chain went bad under it (complete it with length 0 then).</returns>
    public bool TryWriteStatus(VirtioBlkStatus status)
    {
        if (!HasStatus || _writer.Remaining == 0)
        {
            return false;
        }

        try
        {
            _writer.Skip(_writer.Remaining - 1);
            _writer.Write((byte)status);
            return true;
        }
        catch (Exception e) when (e is VirtqueueException or GuestMemoryException)
        {
            return false;
        }
    }

    /// <summary>The status that answers a request with <paramref name="error"/>.</summary>
    /// <param name="error">A parse or check result.</param>
    /// <returns><see cref="VirtioBlkStatus.Ok"/> for none, <see cref="VirtioBlkStatus.Unsupported"/> for unsupported flags, <see cref="VirtioBlkStatus.IoError"/> otherwise.</returns>
    public static VirtioBlkStatus ToStatus(VirtioBlkRequestError error) => error switch
    {
        VirtioBlkRequestError.None => VirtioBlkStatus.Ok,
        VirtioBlkRequestError.UnsupportedFlags => VirtioBlkStatus.Unsupported,
        _ => VirtioBlkStatus.IoError,
    };

    /// <summary>A sentence for the log (constant strings: no allocation).</summary>
    /// <param name="error">A parse or check result.</param>
    /// <returns>What was wrong.</returns>
    public static string Describe(VirtioBlkRequestError error) => error switch
    {
        VirtioBlkRequestError.None => "no error",
        VirtioBlkRequestError.NoStatusByte => "no device-writable status byte",
        VirtioBlkRequestError.HeaderTooShort => "the device-readable bytes are shorter than the 16-byte request header",
        VirtioBlkRequestError.NotWholeSectors => "the data is not a whole number of 512-byte sectors",
        VirtioBlkRequestError.OutOfRange => "the sectors are outside the disk",
        VirtioBlkRequestError.BadSegmentCount => "the payload is not 1 to the allowed number of 16-byte segments",
        VirtioBlkRequestError.TooManySectors => "a segment has more sectors than the device allows",
        VirtioBlkRequestError.UnsupportedFlags => "a segment flag the request type does not allow",
        _ => "unknown error",
    };
}
