using Vhost;
using Microsoft.Win32.SafeHandles;

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
internal static class ImageLock
{
    private const long UseBase = 100;
    private const long RefuseBase = 200;

    /// <summary>Takes the locks of a disk that reads (and, unless read-only, writes) the image and lets no one else write or resize it.</summary>
    /// <param name="image">The image's descriptor (its open file description holds the locks).</param>
    /// <param name="path">The image path, for the error.</param>
    /// <param name="readOnly">Whether the disk only reads.</param>
    /// <exception cref="IOException">Another process holds a conflicting lock, or the file system refuses locks.</exception>
    public static void Acquire(SafeFileHandle image, string path, bool readOnly)
    {
        // What a QEMU disk without share-rw uses and refuses to share (BLK_PERM_* of QEMU's block layer).
        BlockPermissions used = BlockPermissions.ConsistentRead | (readOnly ? 0 : BlockPermissions.Write);
        const BlockPermissions Refused = BlockPermissions.Write | BlockPermissions.Resize;

        using var scope = new Fd.HandleScope(image);
        foreach (BlockPermissions p in Enum.GetValues<BlockPermissions>())
        {
            if ((used & p) != 0)
            {
                Take(scope.Fd, UseBase + Bit(p), path);
            }

            if ((Refused & p) != 0)
            {
                Take(scope.Fd, RefuseBase + Bit(p), path);
            }
        }

        foreach (BlockPermissions p in Enum.GetValues<BlockPermissions>())
        {
            if ((used & p) != 0 && HeldByAnother(scope.Fd, RefuseBase + Bit(p), path))
            {
                throw Conflict(path, p, "does not let others");
            }

            if ((Refused & p) != 0 && HeldByAnother(scope.Fd, UseBase + Bit(p), path))
            {
                throw Conflict(path, p, "already has");
            }
        }
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

    private static unsafe void Take(int fd, long offset, string path)
    {
        var l = new Interop.flock { l_type = Interop.F_RDLCK, l_whence = 0, l_start = offset, l_len = 1 };
        if (Interop.fcntl(fd, Interop.F_OFD_SETLK, &l) < 0)
        {
            Errno e = Interop.LastErrno;
            throw e is Errno.EAGAIN or Errno.EACCES
                ? new IOException($"{path}: image is locked: another process holds an exclusive lock on byte {offset} (a QEMU checking it right now, or a foreign locker); retry, or pass --no-lock")
                : new IOException($"{path}: cannot lock the image (fcntl F_OFD_SETLK: {e}); pass --no-lock on a file system without locks");
        }
    }

    private static unsafe bool HeldByAnother(int fd, long offset, string path)
    {
        // F_OFD_GETLK with a write lock asks whether any other open file description holds a lock
        // on the byte (this description's own locks never conflict with it).
        var l = new Interop.flock { l_type = Interop.F_WRLCK, l_whence = 0, l_start = offset, l_len = 1 };
        if (Interop.fcntl(fd, Interop.F_OFD_GETLK, &l) < 0)
        {
            throw new IOException($"{path}: cannot test the image's locks (fcntl F_OFD_GETLK: {Interop.LastErrno})");
        }

        return l.l_type != Interop.F_UNLCK;
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
