using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    internal const uint S_IFMT = 0xF000;
    internal const uint S_IFSOCK = 0xC000;
    internal const uint S_IFREG = 0x8000;
    internal const uint S_IFBLK = 0x6000;
    internal const uint S_IFDIR = 0x4000;
    internal const uint S_IFCHR = 0x2000;
    internal const uint S_IFIFO = 0x1000;

    /// <summary>The f_type of hugetlbfs (<c>HUGETLBFS_MAGIC</c>).</summary>
    internal const long HUGETLBFS_MAGIC = 0x958458f6;

    /// <summary><c>struct stat</c> as x86_64 lays it out (144 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct stat_x64
    {
        public ulong st_dev;
        public ulong st_ino;
        public ulong st_nlink;
        public uint st_mode;
        public uint st_uid;
        public uint st_gid;
        public int __pad0;
        public ulong st_rdev;
        public long st_size;
        public long st_blksize;
        public long st_blocks;
        public long st_atime;
        public long st_atime_nsec;
        public long st_mtime;
        public long st_mtime_nsec;
        public long st_ctime;
        public long st_ctime_nsec;
        public fixed long __unused[3];
    }

    /// <summary><c>struct stat</c> of the generic 64-bit ABI that aarch64 uses (128 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct stat_generic64
    {
        public ulong st_dev;
        public ulong st_ino;
        public uint st_mode;
        public uint st_nlink;
        public uint st_uid;
        public uint st_gid;
        public ulong st_rdev;
        public ulong __pad1;
        public long st_size;
        public int st_blksize;
        public int __pad2;
        public long st_blocks;
        public long st_atime;
        public long st_atime_nsec;
        public long st_mtime;
        public long st_mtime_nsec;
        public long st_ctime;
        public long st_ctime_nsec;
        public fixed int __unused[2];
    }

    /// <summary><c>struct statfs</c> on 64-bit Linux (120 bytes; the same on x86_64 and aarch64).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct statfs
    {
        public long f_type;
        public long f_bsize;
        public ulong f_blocks;
        public ulong f_bfree;
        public ulong f_bavail;
        public ulong f_files;
        public ulong f_ffree;
        public fixed int f_fsid[2];
        public long f_namelen;
        public long f_frsize;
        public long f_flags;
        public fixed long f_spare[4];
    }

    /// <summary>The fields of <c>struct stat</c> this library reads, independent of architecture.</summary>
    internal readonly struct FileStatus
    {
        public FileStatus(ulong device, ulong inode, uint mode, long size)
        {
            Device = device;
            Inode = inode;
            Mode = mode;
            Size = size;
        }

        public ulong Device { get; }

        public ulong Inode { get; }

        public uint Mode { get; }

        public long Size { get; }

        public uint FileType => Mode & S_IFMT;
    }

    /// <summary><c>fstat(2)</c>; <paramref name="buf"/> must hold this architecture's <c>struct stat</c> (at most 144 bytes).</summary>
    [LibraryImport(Libc, EntryPoint = "fstat", SetLastError = true)]
    internal static partial int fstat(int fd, void* buf);

    /// <summary><c>lstat(2)</c>; <paramref name="buf"/> as for <see cref="fstat"/>. Does not follow a final symlink.</summary>
    [LibraryImport(Libc, EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int lstat(string path, void* buf);

    [LibraryImport(Libc, EntryPoint = "fstatfs", SetLastError = true)]
    internal static partial int fstatfs(int fd, statfs* buf);
}
