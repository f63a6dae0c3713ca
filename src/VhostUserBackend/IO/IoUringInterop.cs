using System.Runtime.InteropServices;

/// <summary>
/// io_uring(7): the three system calls and the structures they share with the kernel
/// (<c>&lt;linux/io_uring.h&gt;</c>). Its own class, not a part of <c>Interop</c>: the interop
/// layer (src/Common) is compiled into Vhost only and reached here through InternalsVisibleTo, and
/// a partial class cannot span two assemblies.
/// </summary>
internal static unsafe partial class IoUringInterop
{
    /// <summary><c>io_uring_setup</c> (the same number on x86_64 and in the generic table aarch64 uses).</summary>
    internal const long SYS_io_uring_setup = 425;

    /// <summary><c>io_uring_enter</c> (x86_64 and generic table).</summary>
    internal const long SYS_io_uring_enter = 426;

    /// <summary><c>io_uring_register</c> (x86_64 and generic table).</summary>
    internal const long SYS_io_uring_register = 427;

    /// <summary><c>IORING_OFF_SQ_RING</c>: mmap offset of the submission ring (and, with SINGLE_MMAP, the completion ring).</summary>
    internal const long IORING_OFF_SQ_RING = 0;

    /// <summary><c>IORING_OFF_CQ_RING</c>.</summary>
    internal const long IORING_OFF_CQ_RING = 0x8000000;

    /// <summary><c>IORING_OFF_SQES</c>: mmap offset of the SQE array.</summary>
    internal const long IORING_OFF_SQES = 0x10000000;

    /// <summary><c>IORING_FSYNC_DATASYNC</c> in <c>fsync_flags</c>.</summary>
    internal const uint IORING_FSYNC_DATASYNC = 1;

    /// <summary><c>syscall(2)</c> with up to six integer arguments (glibc has no io_uring wrappers).</summary>
    [LibraryImport(Interop.Libc, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall6(long number, long arg0, long arg1, long arg2, long arg3, long arg4, long arg5);

    /// <summary><c>struct io_sqring_offsets</c> (40 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct io_sqring_offsets
    {
        public uint head;
        public uint tail;
        public uint ring_mask;
        public uint ring_entries;
        public uint flags;
        public uint dropped;
        public uint array;
        public uint resv1;
        public ulong user_addr;
    }

    /// <summary><c>struct io_cqring_offsets</c> (40 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct io_cqring_offsets
    {
        public uint head;
        public uint tail;
        public uint ring_mask;
        public uint ring_entries;
        public uint overflow;
        public uint cqes;
        public uint flags;
        public uint resv1;
        public ulong user_addr;
    }

    /// <summary><c>struct io_uring_params</c> (120 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct io_uring_params
    {
        public uint sq_entries;
        public uint cq_entries;
        public uint flags;
        public uint sq_thread_cpu;
        public uint sq_thread_idle;
        public uint features;
        public uint wq_fd;
        public fixed uint resv[3];
        public io_sqring_offsets sq_off;
        public io_cqring_offsets cq_off;
    }

    /// <summary><c>struct io_uring_sqe</c> (64 bytes), with the unions flattened to the members used here.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    internal struct io_uring_sqe
    {
        [FieldOffset(0)] public byte opcode;
        [FieldOffset(1)] public byte flags;
        [FieldOffset(2)] public ushort ioprio;
        [FieldOffset(4)] public int fd;
        [FieldOffset(8)] public ulong off;
        [FieldOffset(16)] public ulong addr;
        [FieldOffset(24)] public uint len;
        [FieldOffset(28)] public uint rw_flags;
        [FieldOffset(32)] public ulong user_data;
        [FieldOffset(40)] public ushort buf_index;
        [FieldOffset(42)] public ushort personality;
        [FieldOffset(44)] public int splice_fd_in;
        [FieldOffset(48)] public ulong addr3;
        [FieldOffset(56)] public ulong pad2;
    }

    /// <summary><c>struct io_uring_cqe</c> (16 bytes, without IORING_SETUP_CQE32).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct io_uring_cqe
    {
        public ulong user_data;
        public int res;
        public uint flags;
    }

    /// <summary><c>IORING_OP_*</c> (the operations used here).</summary>
    internal enum IoUringOpcode : byte
    {
        IORING_OP_NOP = 0,
        IORING_OP_READV = 1,
        IORING_OP_WRITEV = 2,
        IORING_OP_FSYNC = 3,
        IORING_OP_FALLOCATE = 17,
    }

    /// <summary><c>IOSQE_*</c> submission entry flags.</summary>
    [Flags]
    internal enum IoUringSqeFlags : byte
    {
        None = 0,
        IOSQE_FIXED_FILE = 1 << 0,
    }

    /// <summary><c>IORING_FEAT_*</c>.</summary>
    [Flags]
    internal enum IoUringFeatures : uint
    {
        IORING_FEAT_SINGLE_MMAP = 1 << 0,
        IORING_FEAT_NODROP = 1 << 1,
        IORING_FEAT_SUBMIT_STABLE = 1 << 2,
    }

    /// <summary><c>IORING_ENTER_*</c>.</summary>
    [Flags]
    internal enum IoUringEnterFlags : uint
    {
        None = 0,
        IORING_ENTER_GETEVENTS = 1 << 0,
    }

    /// <summary><c>IORING_SQ_*</c> (the submission ring's flags word).</summary>
    [Flags]
    internal enum IoUringSqFlags : uint
    {
        IORING_SQ_NEED_WAKEUP = 1 << 0,
        IORING_SQ_CQ_OVERFLOW = 1 << 1,
    }

    /// <summary><c>IORING_REGISTER_*</c> opcodes of io_uring_register.</summary>
    internal enum IoUringRegisterOpcode : uint
    {
        IORING_REGISTER_FILES = 2,
        IORING_UNREGISTER_FILES = 3,
        IORING_REGISTER_EVENTFD = 4,
        IORING_UNREGISTER_EVENTFD = 5,
    }
}
