namespace Vhost.TestSupport;

/// <summary>
/// The layout table of every struct nested in <c>Interop</c>: sizes and offsets from the x86_64
/// ABI (glibc and the kernel UAPI headers). <see cref="InteropLayoutTests"/> checks the C# structs against
/// it; <see cref="CHeaderCrossCheckTests"/> turns it into C <c>_Static_assert</c>s against the real headers
/// (both through the shared <see cref="CHeaders"/>).
/// </summary>
internal static class InteropLayouts
{
    /// <summary>The class whose nested structs the table covers: Vhost's <c>Interop</c>, the one copy of src/Common.</summary>
    public static readonly Type InteropClass = typeof(global::Interop);

    /// <summary>Nested value types of <c>Interop</c> that are not kernel/libc structs, with the reason.</summary>
    public static readonly IReadOnlyDictionary<Type, string> NotInteropStructs = new Dictionary<Type, string>
    {
        [typeof(global::Interop.FileStatus)] = "managed projection of struct stat; never passed to a system call",
    };

    public static readonly IReadOnlyList<LayoutRow> Rows =
    [
        .. CommonInteropLayouts.SharedRows,

        // epoll is compiled into Vhost for the daemon (VhostUserBackend reaches it through
        // InternalsVisibleTo). <sys/epoll.h> declares it packed on x86_64 (__EPOLL_PACKED): 12 bytes.
        new(typeof(global::Interop.epoll_event), 12, "struct epoll_event", CHeaderSet.Libc,
            new("events", 0, 4), new("data", 4, 8)),
        new(typeof(global::Interop.EpollEventArm64), 16, null, CHeaderSet.None,
            new("events", 0, 4), new("data", 8, 8)),
        new(typeof(global::Interop.msghdr), 56, "struct msghdr", CHeaderSet.Libc,
            new("msg_name", 0, 8), new("msg_namelen", 8, 4), new("msg_iov", 16, 8), new("msg_iovlen", 24, 8),
            new("msg_control", 32, 8), new("msg_controllen", 40, 8), new("msg_flags", 48, 4)),
        new(typeof(global::Interop.cmsghdr), 16, "struct cmsghdr", CHeaderSet.Libc,
            new("cmsg_len", 0, 8), new("cmsg_level", 8, 4), new("cmsg_type", 12, 4)),

        // <linux/userfaultfd.h>: what a postcopy back-end (and a front-end serving its faults) passes to the userfaultfd ioctls.
        new(typeof(global::Interop.uffdio_api), 24, "struct uffdio_api", CHeaderSet.Libc,
            new("api", 0, 8), new("features", 8, 8), new("ioctls", 16, 8)),
        new(typeof(global::Interop.uffdio_range), 16, "struct uffdio_range", CHeaderSet.Libc,
            new("start", 0, 8), new("len", 8, 8)),
        new(typeof(global::Interop.uffdio_register), 32, "struct uffdio_register", CHeaderSet.Libc,
            new("range", 0, 16), new("mode", 16, 8), new("ioctls", 24, 8)),

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
}
