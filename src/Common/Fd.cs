using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

/// <summary>
/// Checked wrappers over the fd system calls: each retries <c>EINTR</c> where the call is
/// restartable and turns a failure into a the assembly's errno exception carrying errno and the
/// call's name. Fds are held in <see cref="SafeFileHandle"/> (which closes with <c>close(2)</c>).
/// </summary>
internal static unsafe class Fd
{
    /// <summary>Takes ownership of a raw fd.</summary>
    internal static SafeFileHandle Own(int fd) => new((nint)fd, ownsHandle: true);

    /// <summary>The raw fd of <paramref name="handle"/>; the caller must hold a reference (DangerousAddRef) while using it.</summary>
    internal static int RawOf(SafeHandle handle) => (int)handle.DangerousGetHandle();

    /// <summary>
    /// <c>open(2)</c> with <c>O_CLOEXEC</c> added (EINTR retried); no locking or other side
    /// effects (unlike <see cref="File.OpenHandle"/>, which takes an advisory lock).
    /// </summary>
    internal static SafeFileHandle Open(string path, int flags)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int fd;
        Interop.Error errno;
        do
        {
            fd = Interop.open(path, flags | Interop.O_CLOEXEC, 0);
        }
        while (Interop.Interrupted(fd, out errno));

        return fd >= 0 ? Own(fd) : throw ErrnoChecks.ExceptionFor(errno, "open", path);
    }

    /// <summary><c>read(2)</c>; returns the count (0 at end of file). Throws on error, including EAGAIN.</summary>
    internal static int Read(SafeHandle handle, Span<byte> buffer)
    {
        int n = TryRead(handle, buffer, out Interop.Error errno);
        if (n < 0)
        {
            throw ErrnoChecks.ExceptionFor(errno, "read");
        }

        return n;
    }

    /// <summary><c>read(2)</c>; returns -1 with <paramref name="errno"/> set on error (EINTR retried).</summary>
    internal static int TryRead(SafeHandle handle, Span<byte> buffer, out Interop.Error errno)
    {
        fixed (byte* p = buffer)
        {
            return TransferRetryingInterrupts(&Interop.read, handle, p, buffer.Length, out errno);
        }
    }

    /// <summary><c>write(2)</c>; returns -1 with <paramref name="errno"/> set on error (EINTR retried).</summary>
    internal static int TryWrite(SafeHandle handle, ReadOnlySpan<byte> buffer, out Interop.Error errno)
    {
        fixed (byte* p = buffer)
        {
            return TransferRetryingInterrupts(&Interop.write, handle, p, buffer.Length, out errno);
        }
    }

    /// <summary>Runs a read- or write-shaped call on the handle's fd, retrying EINTR, holding a reference on the handle throughout.</summary>
    private static int TransferRetryingInterrupts(delegate*<int, void*, nuint, nint> call, SafeHandle handle, byte* buffer, int length, out Interop.Error errno)
    {
        using var scope = new HandleScope(handle);
        nint n;
        do
        {
            n = call(scope.Fd, buffer, (nuint)length);
        }
        while (Interop.Interrupted(n, out errno));

        return n >= 0 ? (int)n : -1;
    }

    /// <summary><c>write(2)</c>; throws on error.</summary>
    internal static int Write(SafeHandle handle, ReadOnlySpan<byte> buffer)
    {
        int n = TryWrite(handle, buffer, out Interop.Error errno);
        if (n < 0)
        {
            throw ErrnoChecks.ExceptionFor(errno, "write");
        }

        return n;
    }

    /// <summary><c>pread(2)</c> (EINTR retried); throws on error.</summary>
    internal static int PRead(SafeHandle handle, Span<byte> buffer, long offset)
    {
        using var scope = new HandleScope(handle);
        fixed (byte* p = buffer)
        {
            nint n;
            Interop.Error errno;
            do
            {
                n = Interop.pread(scope.Fd, p, (nuint)buffer.Length, offset);
            }
            while (Interop.Interrupted(n, out errno));

            return n >= 0 ? (int)n : throw ErrnoChecks.ExceptionFor(errno, "pread");
        }
    }

    /// <summary><c>pwrite(2)</c> (EINTR retried); throws on error.</summary>
    internal static int PWrite(SafeHandle handle, ReadOnlySpan<byte> buffer, long offset)
    {
        using var scope = new HandleScope(handle);
        fixed (byte* p = buffer)
        {
            nint n;
            Interop.Error errno;
            do
            {
                n = Interop.pwrite(scope.Fd, p, (nuint)buffer.Length, offset);
            }
            while (Interop.Interrupted(n, out errno));

            return n >= 0 ? (int)n : throw ErrnoChecks.ExceptionFor(errno, "pwrite");
        }
    }

    /// <summary><c>fstat(2)</c>, decoded for this architecture.</summary>
    internal static Interop.FileStatus Stat(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        if (Interop.IsX64)
        {
            Interop.stat_x64 st;
            ErrnoChecks.Check(Interop.fstat(scope.Fd, &st), "fstat");
            return new Interop.FileStatus(st.st_dev, st.st_ino, st.st_mode, st.st_size);
        }
        else
        {
            Interop.stat_generic64 st;
            ErrnoChecks.Check(Interop.fstat(scope.Fd, &st), "fstat");
            return new Interop.FileStatus(st.st_dev, st.st_ino, st.st_mode, st.st_size);
        }
    }

    /// <summary><c>fstatfs(2)</c>.</summary>
    internal static Interop.statfs StatFs(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        Interop.statfs st;
        ErrnoChecks.Check(Interop.fstatfs(scope.Fd, &st), "fstatfs");
        return st;
    }

    /// <summary>Duplicates an fd with close-on-exec set (<c>fcntl(F_DUPFD_CLOEXEC)</c>).</summary>
    internal static SafeFileHandle Duplicate(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        int fd = ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC)");
        return Own(fd);
    }

    /// <summary>Whether <c>FD_CLOEXEC</c> is set.</summary>
    internal static bool IsCloseOnExec(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        int flags = ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_GETFD, 0), "fcntl(F_GETFD)");
        return (flags & Interop.FD_CLOEXEC) != 0;
    }

    /// <summary>Sets <c>FD_CLOEXEC</c> (an inherited fd, so a child started later does not inherit it too).</summary>
    internal static void SetCloseOnExec(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        int flags = ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_GETFD, 0), "fcntl(F_GETFD)");
        if ((flags & Interop.FD_CLOEXEC) == 0)
        {
            ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_SETFD, flags | Interop.FD_CLOEXEC), "fcntl(F_SETFD)");
        }
    }

    /// <summary>Sets or clears <c>O_NONBLOCK</c>.</summary>
    internal static void SetNonBlocking(SafeHandle handle, bool nonBlocking)
    {
        using var scope = new HandleScope(handle);
        int flags = ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_GETFL, 0), "fcntl(F_GETFL)");
        int updated = nonBlocking ? flags | Interop.O_NONBLOCK : flags & ~Interop.O_NONBLOCK;
        if (updated != flags)
        {
            ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_SETFL, updated), "fcntl(F_SETFL)");
        }
    }

    /// <summary>Whether <c>O_NONBLOCK</c> is set.</summary>
    internal static bool IsNonBlocking(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        int flags = ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_GETFL, 0), "fcntl(F_GETFL)");
        return (flags & Interop.O_NONBLOCK) != 0;
    }

    /// <summary>Whether the fd is an eventfd (its /proc/self/fd link reads <c>anon_inode:[eventfd]</c>); control-plane use only (allocates).</summary>
    internal static bool IsEventFd(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        string? target = new FileInfo($"/proc/self/fd/{scope.Fd}").LinkTarget;
        return target == "anon_inode:[eventfd]";
    }

    /// <summary>The memfd seals (<c>F_GET_SEALS</c>); EINVAL for an fd that does not support sealing.</summary>
    internal static int GetSeals(SafeHandle handle)
    {
        using var scope = new HandleScope(handle);
        return ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_GET_SEALS, 0), "fcntl(F_GET_SEALS)");
    }

    /// <summary>Adds memfd seals (<c>F_ADD_SEALS</c>).</summary>
    internal static void AddSeals(SafeHandle handle, int seals)
    {
        using var scope = new HandleScope(handle);
        ErrnoChecks.Check(Interop.fcntl(scope.Fd, Interop.F_ADD_SEALS, seals), "fcntl(F_ADD_SEALS)");
    }

    /// <summary>Creates a memfd of <paramref name="size"/> bytes (close-on-exec, sealable).</summary>
    internal static SafeFileHandle CreateMemFd(string name, long size, uint extraFlags = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        int fd = Interop.memfd_create(name, Interop.MFD_CLOEXEC | Interop.MFD_ALLOW_SEALING | extraFlags);
        if (fd < 0)
        {
            ErrnoChecks.ThrowLast("memfd_create", name);
        }

        SafeFileHandle handle = Own(fd);
        try
        {
            Truncate(handle, size);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary><c>ftruncate(2)</c> (EINTR retried).</summary>
    internal static void Truncate(SafeHandle handle, long size)
    {
        using var scope = new HandleScope(handle);
        int r;
        Interop.Error errno;
        do
        {
            r = Interop.ftruncate(scope.Fd, size);
        }
        while (Interop.Interrupted(r, out errno));

        if (r < 0)
        {
            throw ErrnoChecks.ExceptionFor(errno, "ftruncate");
        }
    }

    /// <summary><c>ioctl(fd, request, void*)</c> (EINTR retried); returns the non-negative result.</summary>
    internal static int Ioctl(SafeHandle handle, nuint request, void* argument, string name)
    {
        using var scope = new HandleScope(handle);
        int r;
        Interop.Error errno;
        do
        {
            r = Interop.ioctl(scope.Fd, request, argument);
        }
        while (Interop.Interrupted(r, out errno));

        return r >= 0 ? r : throw ErrnoChecks.ExceptionFor(errno, "ioctl(" + name + ")");
    }

    /// <summary><c>ioctl(fd, request, unsigned long)</c> (EINTR retried); returns the non-negative result.</summary>
    internal static int IoctlValue(SafeHandle handle, nuint request, nuint argument, string name)
    {
        using var scope = new HandleScope(handle);
        int r;
        Interop.Error errno;
        do
        {
            r = Interop.ioctl(scope.Fd, request, argument);
        }
        while (Interop.Interrupted(r, out errno));

        return r >= 0 ? r : throw ErrnoChecks.ExceptionFor(errno, "ioctl(" + name + ")");
    }

    /// <summary>
    /// Opens a userfaultfd (close-on-exec, nonblocking) that handles kernel-mode faults too (no
    /// <c>UFFD_USER_MODE_ONLY</c>: the daemon's read(2) and io_uring requests touch guest pages in
    /// the kernel). Throws the assembly's errno exception with ENOSYS/EPERM where the kernel lacks
    /// it or forbids it to this process.
    /// </summary>
    internal static SafeFileHandle OpenUserFaultFd()
    {
        long number = Interop.IsX64 ? Interop.SYS_userfaultfd_x64 : Interop.SYS_userfaultfd_arm64;
        long flags = Interop.O_NONBLOCK | 0x80000 /* O_CLOEXEC */;
        long fd = Interop.syscall(number, flags);
        if (fd < 0)
        {
            ErrnoChecks.ThrowLast("userfaultfd");
        }

        return Own((int)fd);
    }

    /// <summary>Holds a reference on a SafeHandle for the duration of a call and exposes its raw fd.</summary>
    internal ref struct HandleScope
    {
        private readonly SafeHandle _handle;
        private bool _added;

        public HandleScope(SafeHandle handle)
        {
            ArgumentNullException.ThrowIfNull(handle);
            _handle = handle;
            _added = false;
            handle.DangerousAddRef(ref _added);
            Fd = (int)handle.DangerousGetHandle();
        }

        public int Fd { get; }

        public void Dispose()
        {
            if (_added)
            {
                _handle.DangerousRelease();
                _added = false;
            }
        }
    }
}
