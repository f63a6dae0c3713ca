using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.IO;

/// <summary>
/// An io_uring instance (io_uring(7)): a submission and a completion ring shared with the kernel,
/// for asynchronous file I/O with many operations in flight. Operations are prepared with the
/// <c>TryPrepare*</c> methods (on files registered with <see cref="RegisterFiles"/>, referred to by
/// index), handed to the kernel with <see cref="Submit"/>, and their results read with
/// <see cref="TryGetCompletion"/>, each carrying the 64-bit user data given at preparation.
/// </summary>
/// <remarks>
/// <para>Threading: one thread at a time prepares and submits, and one thread at a time reaps
/// (it may be another one); neither takes a lock. Preparing, submitting and reaping allocate
/// nothing.</para>
/// <para>Buffers and <see cref="Virtio.Iovec"/> arrays given to an operation must stay valid until its
/// completion is reaped. Completions are never dropped (IORING_FEAT_NODROP is required): when the
/// completion ring is full the kernel keeps the overflow and <see cref="Submit"/> returns 0 until
/// completions are reaped. <see cref="RegisterEventFd"/> makes every completion signal an eventfd, so
/// an epoll loop (a daemon worker, see <see cref="VhostUserWorker.RegisterListener"/>) can wait for
/// completions.</para>
/// <para>io_uring may be unavailable: a kernel before 5.5, <c>kernel.io_uring_disabled</c>, or a
/// seccomp profile in a container. <see cref="TryCreate"/> reports that as a <see cref="VhostException"/>
/// (errno ENOSYS, EPERM in its <see cref="VhostException.ErrorCode"/>) so the caller can fall back to synchronous I/O on threads.</para>
/// </remarks>
public sealed unsafe class IoUring : IDisposable
{
    private readonly SafeFileHandle _ring;
    private readonly SafeMmapHandle _rings;
    private readonly SafeMmapHandle _sqeMapping;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint* _sqFlags;
    private readonly uint _sqMask;
    private readonly IoUringInterop.io_uring_sqe* _sqes;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly IoUringInterop.io_uring_cqe* _cqes;
    private uint _sqLocalTail;
    private bool _disposed;
    private bool _filesRegistered;

    private IoUring(SafeFileHandle ring, in IoUringInterop.io_uring_params p)
    {
        _ring = ring;
        SubmissionQueueEntries = p.sq_entries;
        CompletionQueueEntries = p.cq_entries;
        ulong sqSize = p.sq_off.array + (p.sq_entries * sizeof(uint));
        ulong cqSize = p.cq_off.cqes + (p.cq_entries * (ulong)sizeof(IoUringInterop.io_uring_cqe));
        _rings = SafeMmapHandle.MapKernelObject(ring, IoUringInterop.IORING_OFF_SQ_RING, Math.Max(sqSize, cqSize), "io_uring submission and completion rings");
        try
        {
            _sqeMapping = SafeMmapHandle.MapKernelObject(ring, IoUringInterop.IORING_OFF_SQES, p.sq_entries * (ulong)sizeof(IoUringInterop.io_uring_sqe), "io_uring submission entries");
        }
        catch
        {
            _rings.Dispose();
            throw;
        }

        byte* b = _rings.Pointer;
        _sqHead = (uint*)(b + p.sq_off.head);
        _sqTail = (uint*)(b + p.sq_off.tail);
        _sqFlags = (uint*)(b + p.sq_off.flags);
        _sqMask = *(uint*)(b + p.sq_off.ring_mask);
        uint* array = (uint*)(b + p.sq_off.array);
        for (uint i = 0; i < p.sq_entries; i++)
        {
            // An identity map: entry i of the ring is SQE i (the SQE slot is chosen by the tail).
            array[i] = i;
        }

        _sqes = (IoUringInterop.io_uring_sqe*)_sqeMapping.Pointer;
        _cqHead = (uint*)(b + p.cq_off.head);
        _cqTail = (uint*)(b + p.cq_off.tail);
        _cqMask = *(uint*)(b + p.cq_off.ring_mask);
        _cqes = (IoUringInterop.io_uring_cqe*)(b + p.cq_off.cqes);
        _sqLocalTail = Volatile.Read(ref *_sqTail);
    }

    /// <summary>The submission ring's size (a power of two, at least the size asked for).</summary>
    public uint SubmissionQueueEntries { get; }

    /// <summary>The completion ring's size (twice the submission ring's).</summary>
    public uint CompletionQueueEntries { get; }

    /// <summary>Operations prepared and not yet taken by the kernel (preparing thread).</summary>
    public int PendingSubmissions => (int)(_sqLocalTail - Volatile.Read(ref *_sqHead));

    /// <summary>Free submission entries (preparing thread).</summary>
    public int FreeSubmissionEntries => (int)SubmissionQueueEntries - PendingSubmissions;

    /// <summary>The ring's file descriptor (for diagnostics; owned by this instance).</summary>
    public SafeHandle Handle => _ring;

    /// <summary>Creates a ring with at least <paramref name="entries"/> submission entries.</summary>
    /// <param name="entries">Submission entries (1 to 32768; rounded up to a power of two).</param>
    /// <returns>The ring.</returns>
    /// <exception cref="VhostException">io_uring_setup or mmap failed (ENOSYS or EPERM where io_uring is unavailable or forbidden), or the kernel lacks IORING_FEAT_SINGLE_MMAP or IORING_FEAT_NODROP (5.5 and later have both).</exception>
    public static IoUring Create(uint entries)
    {
        ArgumentOutOfRangeException.ThrowIfZero(entries);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(entries, 32768u);
        IoUringInterop.io_uring_params p = default;
        long fd = IoUringInterop.syscall6(IoUringInterop.SYS_io_uring_setup, entries, (long)&p, 0, 0, 0, 0);
        if (fd < 0)
        {
            ErrnoChecks.ThrowLast("io_uring_setup", $"{entries} entries");
        }

        SafeFileHandle ring = Fd.Own((int)fd);
        try
        {
            var features = (IoUringInterop.IoUringFeatures)p.features;
            const IoUringInterop.IoUringFeatures Needed = IoUringInterop.IoUringFeatures.IORING_FEAT_SINGLE_MMAP | IoUringInterop.IoUringFeatures.IORING_FEAT_NODROP;
            if ((features & Needed) != Needed)
            {
                throw new VhostException(Errno.ENOSYS, "io_uring_setup", $"the kernel lacks IORING_FEAT_SINGLE_MMAP or IORING_FEAT_NODROP (features 0x{p.features:x}; Linux 5.5 or later is needed)");
            }

            return new IoUring(ring, p);
        }
        catch
        {
            ring.Dispose();
            throw;
        }
    }

    /// <summary>Creates a ring, or reports why io_uring cannot be used here.</summary>
    /// <param name="entries">Submission entries (1 to 32768).</param>
    /// <param name="ring">The ring, or null.</param>
    /// <param name="error">
    /// Why it failed, or null: the exception <see cref="Create"/> would have thrown, its
    /// <see cref="VhostException.ErrorCode"/> ENOSYS (no io_uring, or too old), EPERM (disabled by
    /// sysctl or seccomp), ENOMEM, EMFILE..., its message naming the errno.
    /// </param>
    /// <returns>Whether a ring was created.</returns>
    public static bool TryCreate(uint entries, [NotNullWhen(true)] out IoUring? ring, [NotNullWhen(false)] out VhostException? error)
    {
        try
        {
            ring = Create(entries);
            error = null;
            return true;
        }
        catch (VhostException e) when (e.ErrorCode != 0)
        {
            ring = null;
            error = e;
            return false;
        }
    }

    /// <summary>
    /// Registers the files operations refer to by index (IORING_REGISTER_FILES): the kernel keeps
    /// its own reference to each, so the handles may be closed afterwards, and no operation
    /// looks the descriptor up again. Replaces nothing: call it once.
    /// </summary>
    /// <param name="files">The files; a null entry leaves its index empty (operations on it fail with EBADF).</param>
    /// <exception cref="VhostException">io_uring_register failed (EBUSY when files are registered already).</exception>
    public void RegisterFiles(ReadOnlySpan<SafeHandle?> files)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfZero(files.Length);
        int[] fds = new int[files.Length];
        bool[] added = new bool[files.Length];
        try
        {
            for (int i = 0; i < files.Length; i++)
            {
                fds[i] = -1;
                if (files[i] is { } h)
                {
                    h.DangerousAddRef(ref added[i]);
                    fds[i] = (int)h.DangerousGetHandle();
                }
            }

            fixed (int* array = fds)
            {
                Register(IoUringInterop.IoUringRegisterOpcode.IORING_REGISTER_FILES, array, (uint)fds.Length, "IORING_REGISTER_FILES");
            }

            _filesRegistered = true;
        }
        finally
        {
            for (int i = 0; i < files.Length; i++)
            {
                if (added[i])
                {
                    files[i]!.DangerousRelease();
                }
            }
        }
    }

    /// <summary>
    /// Makes every completion signal <paramref name="eventFd"/> (IORING_REGISTER_EVENTFD): wait on
    /// it (epoll, read) for completions. The kernel keeps its own reference to the eventfd.
    /// </summary>
    /// <param name="eventFd">The eventfd (nonblocking, so a reader drains it without blocking).</param>
    /// <exception cref="VhostException">io_uring_register failed (EBUSY when one is registered already).</exception>
    public void RegisterEventFd(EventFd eventFd)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = new Fd.HandleScope(eventFd);
        int fd = scope.Fd;
        Register(IoUringInterop.IoUringRegisterOpcode.IORING_REGISTER_EVENTFD, &fd, 1, "IORING_REGISTER_EVENTFD");
    }

    /// <summary>Prepares a vectored read (IORING_OP_READV) of registered file <paramref name="fileIndex"/> at <paramref name="offset"/>.</summary>
    /// <param name="fileIndex">The index given to <see cref="RegisterFiles"/>.</param>
    /// <param name="vectors">The buffers (the array and the buffers stay valid until the completion is reaped).</param>
    /// <param name="count">The number of vectors (at most 1024, IOV_MAX).</param>
    /// <param name="offset">The file offset.</param>
    /// <param name="userData">Returned with the completion.</param>
    /// <returns>False when the submission ring is full: <see cref="Submit"/> first.</returns>
    public bool TryPrepareReadv(int fileIndex, Iovec* vectors, int count, long offset, ulong userData)
        => TryPrepare(IoUringInterop.IoUringOpcode.IORING_OP_READV, fileIndex, (ulong)offset, (ulong)vectors, (uint)count, 0, userData);

    /// <summary>Prepares a vectored write (IORING_OP_WRITEV) to registered file <paramref name="fileIndex"/> at <paramref name="offset"/>.</summary>
    /// <param name="fileIndex">The index given to <see cref="RegisterFiles"/>.</param>
    /// <param name="vectors">The buffers (the array and the buffers stay valid until the completion is reaped).</param>
    /// <param name="count">The number of vectors (at most 1024, IOV_MAX).</param>
    /// <param name="offset">The file offset.</param>
    /// <param name="userData">Returned with the completion.</param>
    /// <returns>False when the submission ring is full: <see cref="Submit"/> first.</returns>
    public bool TryPrepareWritev(int fileIndex, Iovec* vectors, int count, long offset, ulong userData)
        => TryPrepare(IoUringInterop.IoUringOpcode.IORING_OP_WRITEV, fileIndex, (ulong)offset, (ulong)vectors, (uint)count, 0, userData);

    /// <summary>Prepares an <c>fsync</c> (or <c>fdatasync</c>) of registered file <paramref name="fileIndex"/> (IORING_OP_FSYNC).</summary>
    /// <param name="fileIndex">The index given to <see cref="RegisterFiles"/>.</param>
    /// <param name="dataOnly">fdatasync (IORING_FSYNC_DATASYNC) rather than fsync.</param>
    /// <param name="userData">Returned with the completion.</param>
    /// <returns>False when the submission ring is full.</returns>
    public bool TryPrepareFsync(int fileIndex, bool dataOnly, ulong userData)
        => TryPrepare(IoUringInterop.IoUringOpcode.IORING_OP_FSYNC, fileIndex, 0, 0, 0, dataOnly ? IoUringInterop.IORING_FSYNC_DATASYNC : 0, userData);

    /// <summary>Prepares a <c>fallocate</c> of registered file <paramref name="fileIndex"/> (IORING_OP_FALLOCATE).</summary>
    /// <param name="fileIndex">The index given to <see cref="RegisterFiles"/>.</param>
    /// <param name="mode">The mode (punch a hole, zero a range...).</param>
    /// <param name="offset">The first byte.</param>
    /// <param name="length">The length in bytes.</param>
    /// <param name="userData">Returned with the completion.</param>
    /// <returns>False when the submission ring is full.</returns>
    public bool TryPrepareFallocate(int fileIndex, FallocateMode mode, long offset, long length, ulong userData)
        => TryPrepare(IoUringInterop.IoUringOpcode.IORING_OP_FALLOCATE, fileIndex, (ulong)offset, (ulong)length, (uint)mode, 0, userData);

    /// <summary>Prepares an operation that does nothing and completes with 0 (IORING_OP_NOP): wakes a reaper.</summary>
    /// <param name="userData">Returned with the completion.</param>
    /// <returns>False when the submission ring is full.</returns>
    public bool TryPrepareNop(ulong userData)
        => TryPrepare(IoUringInterop.IoUringOpcode.IORING_OP_NOP, -1, 0, 0, 0, 0, userData);

    /// <summary>
    /// Hands the prepared operations to the kernel (io_uring_enter). Retries on EINTR. Returns 0
    /// without an error when the kernel cannot take them now (EAGAIN: out of memory for requests;
    /// EBUSY: completions overflowed the completion ring): reap completions, then submit again;
    /// the operations stay prepared.
    /// </summary>
    /// <returns>The number of operations the kernel took.</returns>
    /// <exception cref="VhostException">io_uring_enter failed otherwise.</exception>
    public int Submit() => Enter(0);

    /// <summary>As <see cref="Submit"/>, then waits until at least <paramref name="minCompletions"/> completions are ready to reap.</summary>
    /// <param name="minCompletions">Completions to wait for.</param>
    /// <returns>The number of operations the kernel took.</returns>
    /// <exception cref="VhostException">io_uring_enter failed (other than EINTR, EAGAIN, EBUSY).</exception>
    public int SubmitAndWait(int minCompletions)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minCompletions);
        return Enter((uint)minCompletions);
    }

    /// <summary>Takes the next completion, if any (reaping thread; allocates nothing).</summary>
    /// <param name="completion">The completion.</param>
    /// <returns>False when none is ready.</returns>
    public bool TryGetCompletion(out IoUringCompletion completion)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        uint head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail))
        {
            // Completions the kernel kept aside when the ring was full (NODROP) come back on the next enter.
            if ((Volatile.Read(ref *_sqFlags) & (uint)IoUringInterop.IoUringSqFlags.IORING_SQ_CQ_OVERFLOW) == 0)
            {
                completion = default;
                return false;
            }

            FlushOverflow();
            if (head == Volatile.Read(ref *_cqTail))
            {
                completion = default;
                return false;
            }
        }

        IoUringInterop.io_uring_cqe* cqe = _cqes + (head & _cqMask);
        completion = new IoUringCompletion(cqe->user_data, cqe->res, cqe->flags);

        // Release: the entry is read before the kernel may reuse its slot.
        Volatile.Write(ref *_cqHead, head + 1);
        return true;
    }

    /// <summary>Takes up to <paramref name="completions"/>.Length ready completions.</summary>
    /// <param name="completions">Where to put them.</param>
    /// <returns>How many were taken.</returns>
    public int GetCompletions(Span<IoUringCompletion> completions)
    {
        int n = 0;
        while (n < completions.Length && TryGetCompletion(out completions[n]))
        {
            n++;
        }

        return n;
    }

    /// <summary>
    /// Unregisters the files, unmaps the rings and closes the ring descriptor (the kernel cancels or
    /// finishes what is in flight). Idempotent. The registered files are let go synchronously, so a
    /// lock held through them (an image lock) is released when this returns; the kernel tears the
    /// rest of a ring down asynchronously, which is also what happens to a killed process's rings.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        if (_filesRegistered)
        {
            try
            {
                Register(IoUringInterop.IoUringRegisterOpcode.IORING_UNREGISTER_FILES, null, 0, "IORING_UNREGISTER_FILES");
            }
            catch (VhostException)
            {
                // The ring's teardown drops the references anyway, later.
            }
        }

        _disposed = true;
        _sqeMapping.Dispose();
        _rings.Dispose();
        _ring.Dispose();
    }

    private bool TryPrepare(IoUringInterop.IoUringOpcode opcode, int fileIndex, ulong off, ulong addr, uint len, uint opFlags, ulong userData)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        uint tail = _sqLocalTail;
        if (tail - Volatile.Read(ref *_sqHead) >= SubmissionQueueEntries)
        {
            return false;
        }

        IoUringInterop.io_uring_sqe* sqe = _sqes + (tail & _sqMask);
        *sqe = default;
        sqe->opcode = (byte)opcode;
        if (opcode != IoUringInterop.IoUringOpcode.IORING_OP_NOP)
        {
            sqe->flags = (byte)IoUringInterop.IoUringSqeFlags.IOSQE_FIXED_FILE;
            sqe->fd = fileIndex;
        }
        else
        {
            sqe->fd = -1;
        }

        sqe->off = off;
        sqe->addr = addr;
        sqe->len = len;
        sqe->rw_flags = opFlags;
        sqe->user_data = userData;
        _sqLocalTail = tail + 1;
        return true;
    }

    private int Enter(uint minComplete)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);

        // Release: the entries are written before the kernel sees the new tail.
        Volatile.Write(ref *_sqTail, _sqLocalTail);
        uint toSubmit = _sqLocalTail - Volatile.Read(ref *_sqHead);
        var flags = minComplete > 0 ? IoUringInterop.IoUringEnterFlags.IORING_ENTER_GETEVENTS : IoUringInterop.IoUringEnterFlags.None;
        if (toSubmit == 0 && minComplete == 0)
        {
            return 0;
        }

        using var scope = new Fd.HandleScope(_ring);
        long n;
        Interop.Error e;
        do
        {
            n = IoUringInterop.syscall6(IoUringInterop.SYS_io_uring_enter, scope.Fd, toSubmit, minComplete, (long)flags, 0, 0);
        }
        while (Interop.Interrupted((nint)n, out e));

        return n >= 0 ? (int)n
            : (Errno)e is Errno.EAGAIN or Errno.EBUSY ? 0
            : throw ErrnoChecks.ExceptionFor(e, "io_uring_enter", $"{toSubmit} to submit");
    }

    private void FlushOverflow()
    {
        using var scope = new Fd.HandleScope(_ring);
        while (Interop.Interrupted((nint)IoUringInterop.syscall6(IoUringInterop.SYS_io_uring_enter, scope.Fd, 0, 0, (long)IoUringInterop.IoUringEnterFlags.IORING_ENTER_GETEVENTS, 0, 0), out _))
        {
        }
    }

    private void Register(IoUringInterop.IoUringRegisterOpcode opcode, void* arg, uint count, string what)
    {
        using var scope = new Fd.HandleScope(_ring);
        long r;
        Interop.Error e;
        do
        {
            r = IoUringInterop.syscall6(IoUringInterop.SYS_io_uring_register, scope.Fd, (long)opcode, (long)arg, count, 0, 0);
        }
        while (Interop.Interrupted((nint)r, out e));

        if (r < 0)
        {
            throw ErrnoChecks.ExceptionFor(e, "io_uring_register", what);
        }
    }
}
