using System.Reflection;
using System.Runtime.CompilerServices;

namespace Vhost.Tests.Common.Interop;

/// <summary>Which set of C headers declares a struct (they cannot all share one translation unit).</summary>
internal enum CHeaderSet
{
    /// <summary>No C declaration can be checked on this machine (another architecture's layout).</summary>
    None,

    /// <summary>glibc's userspace headers (<c>&lt;sys/socket.h&gt;</c>, <c>&lt;poll.h&gt;</c>, ...).</summary>
    Libc,

    /// <summary>The kernel UAPI headers of x86_64 (<c>&lt;asm/stat.h&gt;</c>, <c>&lt;linux/eventpoll.h&gt;</c>, ...).</summary>
    KernelX64,

    /// <summary><c>&lt;asm-generic/stat.h&gt;</c>: the generic 64-bit layout that aarch64 uses.</summary>
    AsmGeneric64,
}

/// <summary>One field of an interop struct: its C# name, offset and size, and its C name when it differs.</summary>
internal sealed record FieldRow(string Name, int Offset, int Size, string? CName = null);

/// <summary>The expected layout of one interop struct, from the x86_64 (LP64) ABI.</summary>
internal sealed record LayoutRow(Type Type, int Size, string? CType, CHeaderSet Headers, params FieldRow[] Fields);

/// <summary>
/// The layout table of every struct nested in <c>Interop</c>: sizes and offsets from the x86_64
/// ABI (glibc and the kernel UAPI headers). <see cref="LayoutTests"/> checks the C# structs against
/// it; <see cref="CHeaderCrossCheckTests"/> turns it into C <c>_Static_assert</c>s against the real headers.
/// </summary>
internal static class InteropLayouts
{
    /// <summary>Nested value types of <c>Interop</c> that are not kernel/libc structs, with the reason.</summary>
    public static readonly IReadOnlyDictionary<Type, string> NotInteropStructs = new Dictionary<Type, string>
    {
        [typeof(global::Interop.FileStatus)] = "managed projection of struct stat; never passed to a system call",

        // epoll is compiled into Vhost for the daemon (VhostUserBackend reaches it through InternalsVisibleTo);
        // both per-architecture layouts are asserted in tests/VhostUserBackend.Tests/Common/EpollLayoutTests.cs.
        [typeof(global::Interop.epoll_event)] = "struct epoll_event, x86_64 packed layout: asserted by VhostUserBackend.Tests' EpollLayoutTests",
        [typeof(global::Interop.EpollEventArm64)] = "struct epoll_event, aarch64 layout (no x86_64 header to check against): asserted by VhostUserBackend.Tests' EpollLayoutTests",
    };

    public static readonly IReadOnlyList<LayoutRow> Rows =
    [
        new(typeof(global::Interop.msghdr), 56, "struct msghdr", CHeaderSet.Libc,
            new("msg_name", 0, 8), new("msg_namelen", 8, 4), new("msg_iov", 16, 8), new("msg_iovlen", 24, 8),
            new("msg_control", 32, 8), new("msg_controllen", 40, 8), new("msg_flags", 48, 4)),
        new(typeof(global::Interop.cmsghdr), 16, "struct cmsghdr", CHeaderSet.Libc,
            new("cmsg_len", 0, 8), new("cmsg_level", 8, 4), new("cmsg_type", 12, 4)),
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

        // <linux/vhost_types.h> (included by the libc unit through <linux/vhost.h>).
        new(typeof(global::Interop.vhost_vring_state), 8, "struct vhost_vring_state", CHeaderSet.Libc,
            new("index", 0, 4), new("num", 4, 4)),
        new(typeof(global::Interop.vhost_vring_file), 8, "struct vhost_vring_file", CHeaderSet.Libc,
            new("index", 0, 4), new("fd", 4, 4)),
        new(typeof(global::Interop.vhost_vring_addr), 40, "struct vhost_vring_addr", CHeaderSet.Libc,
            new("index", 0, 4), new("flags", 4, 4), new("desc_user_addr", 8, 8), new("used_user_addr", 16, 8),
            new("avail_user_addr", 24, 8), new("log_guest_addr", 32, 8)),
        new(typeof(global::Interop.vhost_memory), 8, "struct vhost_memory", CHeaderSet.Libc,
            new("nregions", 0, 4), new("padding", 4, 4)),
        new(typeof(global::Interop.vhost_memory_region), 32, "struct vhost_memory_region", CHeaderSet.Libc,
            new("guest_phys_addr", 0, 8), new("memory_size", 8, 8), new("userspace_addr", 16, 8), new("flags_padding", 24, 8)),
        new(typeof(global::Interop.vhost_iotlb_msg), 32, "struct vhost_iotlb_msg", CHeaderSet.Libc,
            new("iova", 0, 8), new("size", 8, 8), new("uaddr", 16, 8), new("perm", 24, 1), new("type", 25, 1)),
        // The union member padding[64] is listed before iotlb (same offset): it is the field that ends the struct.
        new(typeof(global::Interop.vhost_msg), 72, "struct vhost_msg", CHeaderSet.Libc,
            new("type", 0, 4), new("padding", 8, 64), new("iotlb", 8, 32)),
        new(typeof(global::Interop.vhost_msg_v2), 72, "struct vhost_msg_v2", CHeaderSet.Libc,
            new("type", 0, 4), new("asid", 4, 4), new("padding", 8, 64), new("iotlb", 8, 32)),
        new(typeof(global::Interop.vhost_scsi_target), 232, "struct vhost_scsi_target", CHeaderSet.Libc,
            new("abi_version", 0, 4), new("vhost_wwpn", 4, 224), new("vhost_tpgt", 228, 2), new("reserved", 230, 2)),
        new(typeof(global::Interop.vhost_vdpa_config), 8, "struct vhost_vdpa_config", CHeaderSet.Libc,
            new("off", 0, 4), new("len", 4, 4)),
        new(typeof(global::Interop.vhost_vdpa_iova_range), 16, "struct vhost_vdpa_iova_range", CHeaderSet.Libc,
            new("first", 0, 8), new("last", 8, 8)),
        // Linux 6.4+: not in the 6.1 UAPI headers of this machine, so not cross-checked in C.
        new(typeof(global::Interop.vhost_worker_state), 4, null, CHeaderSet.None,
            new FieldRow("worker_id", 0, 4)),
        new(typeof(global::Interop.vhost_vring_worker), 8, null, CHeaderSet.None,
            new("index", 0, 4), new("worker_id", 4, 4)),
    ];

    public static LayoutRow Find(string typeName) => Rows.Single(r => r.Type.Name == typeName);

    /// <summary>The managed size of a value type (<c>sizeof(T)</c>), pointers included.</summary>
    public static int SizeOf(Type type)
    {
        if (type.IsPointer)
        {
            return IntPtr.Size;
        }

        MethodInfo sizeOf = typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type);
        return (int)sizeOf.Invoke(null, null)!;
    }

    /// <summary>The instance fields of an interop struct.</summary>
    public static FieldInfo[] FieldsOf(Type type)
        => type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
}
