using Microsoft.Win32.SafeHandles;
using Vhost;

namespace VhostUserBlk;

/// <summary>
/// The disk behind the device: a raw image file or block device (<c>--blk-file</c>), or a
/// temporary sparse memfd. Transfers are <c>preadv</c>/<c>pwritev</c> straight between the file
/// and guest memory; nothing is allocated per request.
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

    private const int ZeroChunk = 64 << 10;
    private static readonly byte[] s_zeroes = GC.AllocateArray<byte>(ZeroChunk, pinned: true);

    private readonly SafeFileHandle _buffered;
    private readonly SafeFileHandle? _direct;

    private BlkImage(SafeFileHandle buffered, SafeFileHandle? direct, long size, bool readOnly, string description)
    {
        _buffered = buffered;
        _direct = direct;
        Size = size;
        IsReadOnly = readOnly;
        Description = description;
    }

    /// <summary>The size in bytes (a multiple of <see cref="SectorSize"/>; a partial last sector is not served).</summary>
    public long Size { get; }

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
                using var scope = new Fd.HandleScope(directHandle);
                int flags = Interop.Check(Interop.fcntl(scope.Fd, Interop.F_GETFL, 0), "fcntl(F_GETFL)");
                int oDirect = Interop.IsX64 ? Interop.O_DIRECT_x64 : Interop.O_DIRECT_arm64;
                if (Interop.fcntl(scope.Fd, Interop.F_SETFL, flags | oDirect) < 0)
                {
                    Interop.ThrowLast("fcntl(F_SETFL, O_DIRECT)", $"{path}: the file system does not support O_DIRECT");
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

    /// <summary>Creates a temporary sparse disk in a memfd (gone when the process exits).</summary>
    public static BlkImage CreateTemporary(long size, bool readOnly)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, SectorSize);
        size -= size % SectorSize;
        SafeFileHandle fd = Fd.CreateMemFd("vhost-user-blk", size);
        return new BlkImage(fd, null, size, readOnly, $"temporary memfd disk ({size} bytes, sparse, lost at exit{(readOnly ? ", read-only" : string.Empty)})");
    }

    /// <summary>Reads <c>[offset, +sum of lengths)</c> into the buffers (advancing <paramref name="iov"/> in place on a short read).</summary>
    public Errno Read(Interop.iovec* iov, int count, long offset) => Transfer(iov, count, offset, write: false);

    /// <summary>Writes the buffers at <paramref name="offset"/> (advancing <paramref name="iov"/> in place on a short write).</summary>
    public Errno Write(Interop.iovec* iov, int count, long offset) => Transfer(iov, count, offset, write: true);

    /// <summary><c>fdatasync</c>.</summary>
    public Errno Flush()
    {
        using var scope = new Fd.HandleScope(_buffered);
        while (Interop.fdatasync(scope.Fd) < 0)
        {
            Errno e = Interop.LastErrno;
            if (e != Errno.EINTR)
            {
                return e;
            }
        }

        return Errno.None;
    }

    /// <summary>Deallocates <c>[offset, +length)</c> (a hint: success when the file system cannot punch holes).</summary>
    public Errno Discard(long offset, long length)
    {
        Errno e = Fallocate(Interop.FALLOC_FL_PUNCH_HOLE | Interop.FALLOC_FL_KEEP_SIZE, offset, length);
        return e is Errno.EOPNOTSUPP or Errno.ENOSYS ? Errno.None : e;
    }

    /// <summary>Makes <c>[offset, +length)</c> read as zeroes: ZERO_RANGE, a punched hole when <paramref name="unmap"/> allows, else written zeroes.</summary>
    public Errno WriteZeroes(long offset, long length, bool unmap)
    {
        Errno e = Fallocate(Interop.FALLOC_FL_ZERO_RANGE | Interop.FALLOC_FL_KEEP_SIZE, offset, length);
        if (e is Errno.EOPNOTSUPP or Errno.ENOSYS or Errno.EINVAL && unmap)
        {
            e = Fallocate(Interop.FALLOC_FL_PUNCH_HOLE | Interop.FALLOC_FL_KEEP_SIZE, offset, length);
        }

        if (e is not (Errno.EOPNOTSUPP or Errno.ENOSYS or Errno.EINVAL))
        {
            return e;
        }

        fixed (byte* zero = s_zeroes)
        {
            Interop.iovec one;
            while (length > 0)
            {
                int chunk = (int)Math.Min(length, ZeroChunk);
                one.iov_base = zero;
                one.iov_len = (nuint)chunk;
                e = TransferOn(_buffered, &one, 1, offset, write: true);
                if (e != Errno.None)
                {
                    return e;
                }

                offset += chunk;
                length -= chunk;
            }
        }

        return Errno.None;
    }

    /// <summary>Closes the descriptors.</summary>
    public void Dispose()
    {
        _direct?.Dispose();
        _buffered.Dispose();
    }

    private static long SizeOf(SafeFileHandle handle)
    {
        using var scope = new Fd.HandleScope(handle);
        long end = Interop.lseek(scope.Fd, 0, Interop.SEEK_END);
        if (end < 0)
        {
            Interop.ThrowLast("lseek(SEEK_END)");
        }

        return end;
    }

    private Errno Fallocate(int mode, long offset, long length)
    {
        using var scope = new Fd.HandleScope(_buffered);
        while (Interop.fallocate(scope.Fd, mode, offset, length) < 0)
        {
            Errno e = Interop.LastErrno;
            if (e != Errno.EINTR)
            {
                return e;
            }
        }

        return Errno.None;
    }

    private Errno Transfer(Interop.iovec* iov, int count, long offset, bool write)
    {
        if (_direct is not null && IsAligned(iov, count, offset))
        {
            Errno e = TransferOn(_direct, iov, count, offset, write);
            if (e != Errno.EINVAL)
            {
                return e;
            }
        }

        return TransferOn(_buffered, iov, count, offset, write);
    }

    private static bool IsAligned(Interop.iovec* iov, int count, long offset)
    {
        if ((offset & (SectorSize - 1)) != 0)
        {
            return false;
        }

        for (int i = 0; i < count; i++)
        {
            // SAFETY: iov has count entries, filled by the caller.
            if ((((nuint)iov[i].iov_base | iov[i].iov_len) & (SectorSize - 1)) != 0)
            {
                return false;
            }
        }

        return true;
    }

    private static Errno TransferOn(SafeFileHandle handle, Interop.iovec* iov, int count, long offset, bool write)
    {
        using var scope = new Fd.HandleScope(handle);
        while (count > 0)
        {
            // SAFETY: iov[0..count) point into guest memory the caller holds a snapshot reference for.
            nint n = write ? Interop.pwritev(scope.Fd, iov, count, offset) : Interop.preadv(scope.Fd, iov, count, offset);
            if (n < 0)
            {
                Errno e = Interop.LastErrno;
                if (e == Errno.EINTR)
                {
                    continue;
                }

                return e;
            }

            if (n == 0)
            {
                // End of file inside the served size: the image shrank under us.
                return Errno.EIO;
            }

            offset += n;
            nuint done = (nuint)n;
            while (count > 0 && done >= iov->iov_len)
            {
                done -= iov->iov_len;
                iov++;
                count--;
            }

            if (count > 0)
            {
                iov->iov_base = (byte*)iov->iov_base + done;
                iov->iov_len -= done;
            }
        }

        return Errno.None;
    }
}
