using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostSamples;

namespace VhostUserBlk;

/// <summary>
/// The disk behind the device: a raw image file or block device (<c>--blk-file</c>), or a
/// temporary sparse memfd. Transfers are <c>preadv</c>/<c>pwritev</c> straight between the file
/// and guest memory by the device's I/O engine (io_uring or I/O threads).
/// </summary>
/// <remarks>
/// With <c>--direct</c> the file is opened a second time with <c>O_DIRECT</c>; a request whose
/// buffers or offset are not 512-byte aligned, or that the file system refuses with EINVAL, goes
/// through the buffered descriptor instead (Linux keeps the two coherent: a direct read writes back
/// dirty cached pages of its range first, a direct write invalidates them). All members are
/// thread-safe (positional I/O only).
/// </remarks>
internal sealed unsafe class BlkImage : IDisposable
{
    /// <summary>The virtio sector.</summary>
    public const int SectorSize = 512;

    private readonly SafeFileHandle _buffered;
    private readonly SafeFileHandle? _direct;

    private BlkImage(SafeFileHandle buffered, SafeFileHandle? direct, long size, bool readOnly, string description)
    {
        _buffered = buffered;
        _direct = direct;
        _size = size;
        IsReadOnly = readOnly;
        Description = description;
    }

    private long _size;

    /// <summary>The size in bytes (a multiple of <see cref="SectorSize"/>; a partial last sector is not served). Grows with <see cref="TryGrow"/>.</summary>
    public long Size => Volatile.Read(ref _size);

    /// <summary>The capacity in 512-byte sectors.</summary>
    public ulong Sectors => (ulong)Size / SectorSize;

    /// <summary>Whether writes are refused.</summary>
    public bool IsReadOnly { get; }

    /// <summary>The QEMU-compatible image lock (null with --no-lock and for the temporary disk).</summary>
    public ImageLock? Lock { get; private init; }

    /// <summary>
    /// Whether writes may go to the image now: not read-only, and the image is active (not the
    /// destination of an incoming migration before its rings start, nor a source that gave the
    /// image up at the end of its migration).
    /// </summary>
    public bool IsWritable => !IsReadOnly && (Lock?.IsActive ?? true);

    /// <summary>Whether aligned requests bypass the page cache (O_DIRECT).</summary>
    public bool IsDirect => _direct is not null;

    /// <summary>The buffered descriptor (owned by the image).</summary>
    public SafeFileHandle BufferedHandle => _buffered;

    /// <summary>The O_DIRECT descriptor (owned by the image), or null without <c>--direct</c>.</summary>
    public SafeFileHandle? DirectHandle => _direct;

    /// <summary>
    /// Whether the image is in memory (a file on tmpfs, or the temporary memfd): its reads and writes
    /// never wait for a device, so the I/O engine runs them inline on the worker.
    /// </summary>
    public bool IsInMemory => Native.IsInMemory(_buffered);

    /// <summary>What the disk is, for logs.</summary>
    public string Description { get; }

    /// <summary>Opens an image file or block device.</summary>
    /// <exception cref="IOException">The file cannot be opened (missing, locked by another back-end, no permission).</exception>
    /// <exception cref="VhostException">O_DIRECT is not supported by the file system, or the size cannot be read.</exception>
    /// <param name="path">The image.</param>
    /// <param name="readOnly">Serve it read-only.</param>
    /// <param name="direct">Use O_DIRECT for aligned requests.</param>
    /// <param name="lockImage">Take QEMU-compatible locks.</param>
    /// <param name="incoming">Start inactive, as the destination of a live migration (<see cref="ImageLock"/>).</param>
    public static BlkImage OpenFile(string path, bool readOnly, bool direct, bool lockImage = true, bool incoming = false)
    {
        // FileShare.ReadWrite: .NET's own advisory lock would not be seen by QEMU. The lock that
        // counts is QEMU's byte-range scheme (ImageLock) on this descriptor's open file description;
        // the O_DIRECT descriptor below is a second description of the same file and takes none.
        SafeFileHandle buffered = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        SafeFileHandle? directHandle = null;
        try
        {
            ImageLock? imageLock = lockImage ? ImageLock.Acquire(buffered, path, readOnly, active: !incoming) : null;

            long size = SizeOf(buffered);
            if (direct)
            {
                // A second descriptor (own file description, so F_SETFL does not affect the first) with O_DIRECT.
                directHandle = File.OpenHandle($"/proc/self/fd/{(int)buffered.DangerousGetHandle()}", FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
                using var scope = new HandleScope(directHandle);
                int flags = Native.fcntl(scope.Fd, Native.F_GETFL, 0);
                if (flags < 0)
                {
                    Native.ThrowLast("fcntl(F_GETFL)");
                }

                if (Native.fcntl(scope.Fd, Native.F_SETFL, flags | Native.O_DIRECT) < 0)
                {
                    Native.ThrowLast("fcntl(F_SETFL, O_DIRECT)", $"{path}: the file system does not support O_DIRECT");
                }
            }

            return new BlkImage(buffered, directHandle, size - (size % SectorSize), readOnly, $"{path} ({size} bytes{(readOnly ? ", read-only" : string.Empty)}{(direct ? ", O_DIRECT" : string.Empty)}{(incoming ? ", inactive until the incoming migration starts its rings" : string.Empty)})")
            {
                Lock = imageLock,
            };
        }
        catch
        {
            directHandle?.Dispose();
            buffered.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the file's size again (an operator grew it: <c>truncate</c>, <c>lvextend</c>) and
    /// takes it if it grew. A smaller size is not taken: the guest may have data and requests
    /// beyond it, and shrinking a disk under a running guest is for the guest's administrator to
    /// do first.
    /// </summary>
    /// <param name="old">The size before.</param>
    /// <param name="now">The file's size now (rounded down to whole sectors).</param>
    /// <returns>Whether the size grew.</returns>
    public bool TryGrow(out long old, out long now)
    {
        old = Size;
        now = SizeOf(_buffered);
        now -= now % SectorSize;
        if (now <= old)
        {
            return false;
        }

        Volatile.Write(ref _size, now);
        return true;
    }

    /// <summary>Creates a temporary sparse disk in a memfd (gone when the process exits).</summary>
    public static BlkImage CreateTemporary(long size, bool readOnly)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, SectorSize);
        size -= size % SectorSize;
        int raw = Native.memfd_create("vhost-user-blk", Native.MFD_CLOEXEC);
        if (raw < 0)
        {
            Native.ThrowLast("memfd_create");
        }

        var fd = new SafeFileHandle(raw, ownsHandle: true);
        try
        {
            RandomAccess.SetLength(fd, size);
        }
        catch
        {
            fd.Dispose();
            throw;
        }

        return new BlkImage(fd, null, size, readOnly, $"temporary memfd disk ({size} bytes, sparse, lost at exit{(readOnly ? ", read-only" : string.Empty)})");
    }

    /// <summary>Closes the descriptors.</summary>
    public void Dispose()
    {
        _direct?.Dispose();
        _buffered.Dispose();
    }

    private static long SizeOf(SafeFileHandle handle)
    {
        using var scope = new HandleScope(handle);
        long end = Native.lseek(scope.Fd, 0, Native.SEEK_END);
        if (end < 0)
        {
            Native.ThrowLast("lseek(SEEK_END)");
        }

        return end;
    }
}
