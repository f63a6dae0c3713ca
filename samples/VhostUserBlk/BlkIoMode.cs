namespace VhostUserBlk;

/// <summary>How the device does its I/O (<c>--io</c>).</summary>
internal enum BlkIoMode
{
    /// <summary>io_uring, falling back to <see cref="Threads"/> where the kernel refuses it.</summary>
    Uring,

    /// <summary>Synchronous preadv/pwritev on a few I/O threads per worker.</summary>
    Threads,
}
