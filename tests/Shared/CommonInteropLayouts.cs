namespace Vhost.TestSupport;

/// <summary>
/// The layout rows of the general src/Common interop structs (file and vector I/O, stat, peer
/// credentials, socket addresses, poll), from the x86_64 ABI: the start of the layout table of a
/// test project whose library compiles src/Common (today Vhost only; VhostUserBackend uses
/// Vhost's copy). <c>global::Interop</c> here is that library's copy.
/// </summary>
internal static class CommonInteropLayouts
{
    public static readonly LayoutRow[] SharedRows =
    [
        new(typeof(global::Interop.iovec), 16, "struct iovec", CHeaderSet.Libc,
            new("iov_base", 0, 8), new("iov_len", 8, 8)),
        new(typeof(global::Interop.flock), 32, "struct flock", CHeaderSet.Libc,
            new("l_type", 0, 2), new("l_whence", 2, 2), new("l_start", 8, 8), new("l_len", 16, 8), new("l_pid", 24, 4)),
        new(typeof(global::Interop.stat_x64), 144, "struct stat", CHeaderSet.KernelX64,
            new("st_dev", 0, 8), new("st_ino", 8, 8), new("st_nlink", 16, 8), new("st_mode", 24, 4),
            new("st_uid", 28, 4), new("st_gid", 32, 4), new("__pad0", 36, 4), new("st_rdev", 40, 8),
            new("st_size", 48, 8), new("st_blksize", 56, 8), new("st_blocks", 64, 8),
            new("st_atime", 72, 8), new("st_atime_nsec", 80, 8), new("st_mtime", 88, 8), new("st_mtime_nsec", 96, 8),
            new("st_ctime", 104, 8), new("st_ctime_nsec", 112, 8), new("__unused", 120, 24)),
        new(typeof(global::Interop.stat_generic64), 128, "struct stat", CHeaderSet.AsmGeneric64,
            new("st_dev", 0, 8), new("st_ino", 8, 8), new("st_mode", 16, 4), new("st_nlink", 20, 4),
            new("st_uid", 24, 4), new("st_gid", 28, 4), new("st_rdev", 32, 8), new("__pad1", 40, 8),
            new("st_size", 48, 8), new("st_blksize", 56, 4), new("__pad2", 60, 4), new("st_blocks", 64, 8),
            new("st_atime", 72, 8), new("st_atime_nsec", 80, 8), new("st_mtime", 88, 8), new("st_mtime_nsec", 96, 8),
            new("st_ctime", 104, 8), new("st_ctime_nsec", 112, 8), new("__unused", 120, 8, CName: "__unused4")),
        new(typeof(global::Interop.statfs), 120, "struct statfs", CHeaderSet.KernelX64,
            new("f_type", 0, 8), new("f_bsize", 8, 8), new("f_blocks", 16, 8), new("f_bfree", 24, 8),
            new("f_bavail", 32, 8), new("f_files", 40, 8), new("f_ffree", 48, 8), new("f_fsid", 56, 8),
            new("f_namelen", 64, 8), new("f_frsize", 72, 8), new("f_flags", 80, 8), new("f_spare", 88, 32)),
        new(typeof(global::Interop.ucred), 12, "struct ucred", CHeaderSet.Libc,
            new("pid", 0, 4), new("uid", 4, 4), new("gid", 8, 4)),
        new(typeof(global::Interop.sockaddr_un), 110, "struct sockaddr_un", CHeaderSet.Libc,
            new("sun_family", 0, 2), new("sun_path", 2, 108)),
        new(typeof(global::Interop.pollfd), 8, "struct pollfd", CHeaderSet.Libc,
            new("fd", 0, 4), new("events", 4, 2), new("revents", 6, 2)),
        new(typeof(global::Interop.timeval), 16, "struct timeval", CHeaderSet.Libc,
            new("tv_sec", 0, 8), new("tv_usec", 8, 8)),
    ];
}
