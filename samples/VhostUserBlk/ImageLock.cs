using Vhost;
using Microsoft.Win32.SafeHandles;
using VhostSamples;

namespace VhostUserBlk;

/// <summary>
/// Image locking that QEMU understands: the open-file-description byte locks of QEMU's
/// file-posix driver. Each block permission has a byte at 100 + its bit ("I use it") and one at
/// 200 + its bit ("I do not let others use it"); a user takes shared locks on its bytes, then
/// checks that no one else holds a lock on the opposite bytes. So a vhost-user-blk serving an image
/// read-write stops a second vhost-user-blk, a QEMU, a qemu-storage-daemon or a plain
/// <c>qemu-img info</c> from opening it behind its back, and the other way round. The locks belong
/// to the open file description: they go away when the image is closed or the process dies.
/// </summary>
/// <remarks>
/// Live migration hands the image over the way QEMU does with its own images: the destination
/// starts <em>inactive</em> (<c>--incoming</c>, like QEMU's <c>-incoming</c>): it only reads and
/// lets others write, so it starts while the source writes. The source gives write access up
/// (<see cref="Deactivate"/>) when its rings stop at the end of the migration, and the destination
/// takes it (<see cref="Activate"/>) when its rings start; a third writer is refused throughout.
/// </remarks>
internal sealed class ImageLock
{
    private const long UseBase = 100;
    private const long RefuseBase = 200;

    // What a QEMU disk without share-rw refuses to share while it is active.
    private const BlockPermissions Refused = BlockPermissions.Write | BlockPermissions.Resize;

    private readonly SafeFileHandle _image;
    private readonly string _path;
    private readonly bool _readOnly;

    private ImageLock(SafeFileHandle image, string path, bool readOnly)
    {
        _image = image;
        _path = path;
        _readOnly = readOnly;
    }

    /// <summary>Whether this process holds the image active: writing (unless read-only) and refusing other writers.</summary>
    public bool IsActive { get; private set; }

    /// <summary>
    /// Takes the locks of a disk that reads the image and, when <paramref name="active"/>, writes
    /// it (unless read-only) and lets no one else write or resize it.
    /// </summary>
    /// <param name="image">The image's descriptor (its open file description holds the locks).</param>
    /// <param name="path">The image path, for the error.</param>
    /// <param name="readOnly">Whether the disk only reads.</param>
    /// <param name="active">False for the destination of a migration: consistent read only, sharing everything, until <see cref="Activate"/>.</param>
    /// <returns>The lock state of the image.</returns>
    /// <exception cref="IOException">Another process holds a conflicting lock, or the file system refuses locks.</exception>
    public static ImageLock Acquire(SafeFileHandle image, string path, bool readOnly, bool active)
    {
        var l = new ImageLock(image, path, readOnly);
        using (var scope = new HandleScope(image))
        {
            Take(scope.Fd, UseBase + Bit(BlockPermissions.ConsistentRead), path);
            if (HeldByAnother(scope.Fd, RefuseBase + Bit(BlockPermissions.ConsistentRead), path))
            {
                throw Conflict(path, BlockPermissions.ConsistentRead, "does not let others");
            }
        }

        if (active)
        {
            l.Activate();
        }

        return l;
    }

    /// <summary>Takes write access (unless read-only) and refuses other writers; a no-op when active already.</summary>
    /// <exception cref="IOException">Another process writes the image or refuses writers (the source of a migration that did not give it up).</exception>
    public void Activate()
    {
        if (IsActive)
        {
            return;
        }

        BlockPermissions used = _readOnly ? 0 : BlockPermissions.Write;
        using var scope = new HandleScope(_image);
        try
        {
            foreach (BlockPermissions p in Enum.GetValues<BlockPermissions>())
            {
                if ((used & p) != 0)
                {
                    Take(scope.Fd, UseBase + Bit(p), _path);
                }

                if ((Refused & p) != 0)
                {
                    Take(scope.Fd, RefuseBase + Bit(p), _path);
                }
            }

            foreach (BlockPermissions p in Enum.GetValues<BlockPermissions>())
            {
                if ((used & p) != 0 && HeldByAnother(scope.Fd, RefuseBase + Bit(p), _path))
                {
                    throw Conflict(_path, p, "does not let others");
                }

                if ((Refused & p) != 0 && HeldByAnother(scope.Fd, UseBase + Bit(p), _path))
                {
                    throw Conflict(_path, p, "already has");
                }
            }
        }
        catch
        {
            ReleaseWrite(scope.Fd);
            throw;
        }

        IsActive = true;
    }

    /// <summary>Gives write access up and lets others write (the source at the end of a migration); consistent read stays.</summary>
    public void Deactivate()
    {
        if (!IsActive)
        {
            return;
        }

        using var scope = new HandleScope(_image);
        ReleaseWrite(scope.Fd);
        IsActive = false;
    }

    private static long Bit(BlockPermissions p) => System.Numerics.BitOperations.TrailingZeroCount((uint)p);

    private static IOException Conflict(string path, BlockPermissions p, string what)
        => new($"{path}: image is locked: another process (a QEMU, qemu-storage-daemon or vhost-user-blk) {what} {Describe(p)} access; stop it, or pass --no-lock if the image really may be shared");

    private static string Describe(BlockPermissions p) => p switch
    {
        BlockPermissions.ConsistentRead => "consistent read",
        BlockPermissions.Write => "write",
        BlockPermissions.WriteUnchanged => "write-unchanged",
        _ => "resize",
    };

    /// <summary>Drops the write-use byte and the refusal bytes (unlocking a byte this description does not hold is a no-op).</summary>
    private static void ReleaseWrite(int fd)
    {
        Unlock(fd, UseBase + Bit(BlockPermissions.Write));
        foreach (BlockPermissions p in Enum.GetValues<BlockPermissions>())
        {
            if ((Refused & p) != 0)
            {
                Unlock(fd, RefuseBase + Bit(p));
            }
        }
    }

    private static unsafe void Take(int fd, long offset, string path)
    {
        var l = new Native.flock { l_type = Native.F_RDLCK, l_whence = 0, l_start = offset, l_len = 1 };
        if (Native.fcntl(fd, Native.F_OFD_SETLK, &l) < 0)
        {
            int e = Native.LastErrno;
            throw e is Errno.EAGAIN or Errno.EACCES
                ? new IOException($"{path}: image is locked: another process holds an exclusive lock on byte {offset} (a QEMU checking it right now, or a foreign locker); retry, or pass --no-lock")
                : new IOException($"{path}: cannot lock the image (fcntl F_OFD_SETLK: {Errno.Describe(e)}); pass --no-lock on a file system without locks");
        }
    }

    private static unsafe void Unlock(int fd, long offset)
    {
        var l = new Native.flock { l_type = Native.F_UNLCK, l_whence = 0, l_start = offset, l_len = 1 };
        _ = Native.fcntl(fd, Native.F_OFD_SETLK, &l);
    }

    private static unsafe bool HeldByAnother(int fd, long offset, string path)
    {
        // F_OFD_GETLK with a write lock asks whether any other open file description holds a lock
        // on the byte (this description's own locks never conflict with it).
        var l = new Native.flock { l_type = Native.F_WRLCK, l_whence = 0, l_start = offset, l_len = 1 };
        if (Native.fcntl(fd, Native.F_OFD_GETLK, &l) < 0)
        {
            throw new IOException($"{path}: cannot test the image's locks (fcntl F_OFD_GETLK: {Native.LastErrno})");
        }

        return l.l_type != Native.F_UNLCK;
    }

    /// <summary>QEMU's block permissions, by bit (the lock byte is the base plus the bit's index).</summary>
    [Flags]
    private enum BlockPermissions
    {
        ConsistentRead = 0x01,
        Write = 0x02,
        WriteUnchanged = 0x04,
        Resize = 0x08,
    }
}
