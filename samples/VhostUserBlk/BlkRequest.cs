using System.Runtime.InteropServices;
using VhostUserBackend;
using VhostUserBackend.IO;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Virtio;

namespace VhostUserBlk;

/// <summary>What a request's current I/O operation is (a request may run several in turn).</summary>
internal enum BlkStage
{
    /// <summary>A read into guest memory (or a bounce buffer).</summary>
    Read,

    /// <summary>A write from guest memory (or a bounce buffer).</summary>
    Write,

    /// <summary>The fdatasync after a write in write-through mode.</summary>
    WriteFlush,

    /// <summary>A FLUSH request's fdatasync.</summary>
    Flush,

    /// <summary>DISCARD: fallocate(PUNCH_HOLE|KEEP_SIZE).</summary>
    Discard,

    /// <summary>WRITE_ZEROES: fallocate(ZERO_RANGE|KEEP_SIZE).</summary>
    ZeroRange,

    /// <summary>WRITE_ZEROES with UNMAP, when ZERO_RANGE is not supported: fallocate(PUNCH_HOLE|KEEP_SIZE).</summary>
    ZeroPunch,

    /// <summary>WRITE_ZEROES when fallocate cannot: writes of a zero buffer.</summary>
    ZeroWrite,
}

/// <summary>The I/O operation a request asks an engine for.</summary>
internal enum BlkOperation
{
    /// <summary>preadv / IORING_OP_READV.</summary>
    Readv,

    /// <summary>pwritev / IORING_OP_WRITEV.</summary>
    Writev,

    /// <summary>fdatasync / IORING_OP_FSYNC with DATASYNC.</summary>
    Fdatasync,

    /// <summary>fallocate / IORING_OP_FALLOCATE.</summary>
    Fallocate,
}

/// <summary>
/// One request in flight: the chain it came in, where its status byte goes, and its current I/O
/// operation. Preallocated per worker and reused (its iovec array is native memory), so a request
/// in steady state allocates nothing.
/// </summary>
internal sealed unsafe class BlkRequest : IDisposable
{
    /// <summary>Iovecs per request: <c>seg_max</c> plus room for buffers split at memory-region boundaries.</summary>
    public const int MaxIovecs = 256;

    public BlkRequest(int id)
    {
        Id = id;
        Iovecs = (Iovec*)NativeMemory.AllocZeroed(MaxIovecs, (nuint)sizeof(Iovec));
        GuestIovecs = (Iovec*)NativeMemory.AllocZeroed(MaxIovecs, (nuint)sizeof(Iovec));
    }

    /// <summary>The engine's user data for this request (its index in the worker's table).</summary>
    public int Id { get; }

    /// <summary>The iovecs of the current transfer (into guest memory, or the bounce buffer).</summary>
    public Iovec* Iovecs { get; private set; }

    public Vring? Vring { get; set; }

    /// <summary>The parsed request: its chain, data reader, and writer (data for reads, then the status byte; it logs what it writes).</summary>
    public VirtioBlkRequest Request;

    public BlkStage Stage { get; set; }

    public BlkOperation Operation { get; set; }

    /// <summary>0: the buffered descriptor; 1: the O_DIRECT one.</summary>
    public int File { get; set; }

    public int IovecCount { get; set; }

    /// <summary>The next file offset of the transfer.</summary>
    public long Offset { get; set; }

    /// <summary>Bytes left to transfer (or the fallocate length).</summary>
    public long Remaining { get; set; }

    public FallocateMode Mode { get; set; }

    public ulong Sector { get; set; }

    /// <summary>An aligned bounce buffer in use (O_DIRECT with a misaligned guest buffer), or null.</summary>
    public byte* Bounce { get; set; }

    /// <summary>The request's data buffers in guest memory (the transfer's iovecs are a copy, or the bounce buffer).</summary>
    public Iovec* GuestIovecs { get; private set; }

    public int GuestIovecCount { get; set; }

    /// <summary>Advances the iovecs past <paramref name="done"/> bytes (a short transfer continues from there).</summary>
    public void Advance(nuint done)
    {
        Iovec* iov = Iovecs;
        int count = IovecCount;
        int skipped = 0;
        while (skipped < count && done >= iov[skipped].Length)
        {
            done -= iov[skipped].Length;
            skipped++;
        }

        if (skipped > 0)
        {
            new Span<Iovec>(iov + skipped, count - skipped).CopyTo(new Span<Iovec>(iov, count - skipped));
            count -= skipped;
        }

        if (count > 0)
        {
            iov[0].Base += (nint)done;
            iov[0].Length -= done;
        }

        IovecCount = count;
    }

    /// <summary>Forgets the chain and its memory (the request goes back to the pool).</summary>
    public void Clear()
    {
        Vring = null;
        Request = default;
        Bounce = null;
        GuestIovecCount = 0;
    }

    public void Dispose()
    {
        NativeMemory.Free(Iovecs);
        NativeMemory.Free(GuestIovecs);
        Iovecs = null;
        GuestIovecs = null;
    }
}
