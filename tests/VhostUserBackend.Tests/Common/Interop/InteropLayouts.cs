namespace Vhost.TestSupport;

/// <summary>
/// The layout table of every struct nested in VhostUserBackend's <c>Interop</c> (the src/Common
/// files it compiles, epoll and io_uring): sizes and offsets from the x86_64 ABI. Checked against
/// the C# structs by <see cref="InteropLayoutTests"/> and against the real headers by
/// <see cref="CHeaderCrossCheckTests"/>, through the shared <see cref="CHeaders"/>.
/// </summary>
internal static class InteropLayouts
{
    /// <summary>Nested value types of <c>Interop</c> that are not kernel/libc structs, with the reason.</summary>
    public static readonly IReadOnlyDictionary<Type, string> NotInteropStructs = new Dictionary<Type, string>
    {
        [typeof(global::Interop.FileStatus)] = "managed projection of struct stat; never passed to a system call",
    };

    public static readonly IReadOnlyList<LayoutRow> Rows =
    [
        .. CommonInteropLayouts.SharedRows,

        // <sys/epoll.h> declares it packed on x86_64 (__EPOLL_PACKED): 12 bytes.
        new(typeof(global::Interop.epoll_event), 12, "struct epoll_event", CHeaderSet.Libc,
            new("events", 0, 4), new("data", 4, 8)),
        new(typeof(global::Interop.EpollEventArm64), 16, null, CHeaderSet.None,
            new("events", 0, 4), new("data", 8, 8)),

        // <linux/io_uring.h>. user_addr was resv2 before Linux 6.5 and __pad2 is an array in the
        // header: those are checked by size only (empty C name), or by offset under their C name.
        new(typeof(global::Interop.io_sqring_offsets), 40, "struct io_sqring_offsets", CHeaderSet.Libc,
            new("head", 0, 4), new("tail", 4, 4), new("ring_mask", 8, 4), new("ring_entries", 12, 4),
            new("flags", 16, 4), new("dropped", 20, 4), new("array", 24, 4), new("resv1", 28, 4),
            new("user_addr", 32, 8, CName: "")),
        new(typeof(global::Interop.io_cqring_offsets), 40, "struct io_cqring_offsets", CHeaderSet.Libc,
            new("head", 0, 4), new("tail", 4, 4), new("ring_mask", 8, 4), new("ring_entries", 12, 4),
            new("overflow", 16, 4), new("cqes", 20, 4), new("flags", 24, 4), new("resv1", 28, 4),
            new("user_addr", 32, 8, CName: "")),
        new(typeof(global::Interop.io_uring_params), 120, "struct io_uring_params", CHeaderSet.Libc,
            new("sq_entries", 0, 4), new("cq_entries", 4, 4), new("flags", 8, 4), new("sq_thread_cpu", 12, 4),
            new("sq_thread_idle", 16, 4), new("features", 20, 4), new("wq_fd", 24, 4), new("resv", 28, 12),
            new("sq_off", 40, 40), new("cq_off", 80, 40)),
        new(typeof(global::Interop.io_uring_sqe), 64, "struct io_uring_sqe", CHeaderSet.Libc,
            new("opcode", 0, 1), new("flags", 1, 1), new("ioprio", 2, 2), new("fd", 4, 4),
            new("off", 8, 8), new("addr", 16, 8), new("len", 24, 4), new("rw_flags", 28, 4),
            new("user_data", 32, 8), new("buf_index", 40, 2), new("personality", 42, 2), new("splice_fd_in", 44, 4),
            new("addr3", 48, 8), new("pad2", 56, 8, CName: "__pad2")),
        new(typeof(global::Interop.io_uring_cqe), 16, "struct io_uring_cqe", CHeaderSet.Libc,
            new("user_data", 0, 8), new("res", 8, 4), new("flags", 12, 4)),
    ];
}
