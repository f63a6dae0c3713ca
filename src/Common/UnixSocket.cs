using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

/// <summary>AF_UNIX stream sockets: pairs, listeners, connects, peer credentials. Every fd is close-on-exec.</summary>
internal static unsafe class UnixSocket
{
    /// <summary>Creates a connected <c>socketpair(AF_UNIX, SOCK_STREAM)</c>.</summary>
    internal static (SafeFileHandle First, SafeFileHandle Second) CreatePair(bool nonBlocking = false)
    {
        int* sv = stackalloc int[2];
        int type = Interop.SOCK_STREAM | Interop.SOCK_CLOEXEC | (nonBlocking ? Interop.SOCK_NONBLOCK : 0);
        ErrnoChecks.Check(Interop.socketpair(Interop.AF_UNIX, type, 0, sv), "socketpair");
        return (Fd.Own(sv[0]), Fd.Own(sv[1]));
    }

    /// <summary>Creates an unconnected AF_UNIX stream socket.</summary>
    internal static SafeFileHandle Create(bool nonBlocking = false)
    {
        int type = Interop.SOCK_STREAM | Interop.SOCK_CLOEXEC | (nonBlocking ? Interop.SOCK_NONBLOCK : 0);
        return Fd.Own(ErrnoChecks.Check(Interop.socket(Interop.AF_UNIX, type, 0), "socket"));
    }

    /// <summary>Fills a <c>sockaddr_un</c>; throws <see cref="ArgumentException"/> when the path does not fit.</summary>
    internal static uint FillAddress(string path, out Interop.sockaddr_un address)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int length = Encoding.UTF8.GetByteCount(path);
        if (length >= Interop.UnixPathMax)
        {
            throw new ArgumentException($"socket path is {length} bytes; a Unix socket path must be shorter than {Interop.UnixPathMax} bytes: {path}", nameof(path));
        }

        address = default;
        address.sun_family = Interop.AF_UNIX;
        fixed (byte* dst = address.sun_path)
        {
            Encoding.UTF8.GetBytes(path, new Span<byte>(dst, Interop.UnixPathMax));
        }

        return (uint)(sizeof(ushort) + length + 1);
    }

    /// <summary>Binds and listens on <paramref name="path"/>.</summary>
    internal static SafeFileHandle Listen(string path, int backlog = 16)
    {
        uint length = FillAddress(path, out Interop.sockaddr_un address);
        SafeFileHandle socket = Create();
        try
        {
            using var scope = new Fd.HandleScope(socket);
            ErrnoChecks.Check(Interop.bind(scope.Fd, &address, length), "bind", path);
            ErrnoChecks.Check(Interop.listen(scope.Fd, backlog), "listen", path);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects to the socket at <paramref name="path"/> (EINTR retried).</summary>
    internal static SafeFileHandle Connect(string path)
    {
        uint length = FillAddress(path, out Interop.sockaddr_un address);
        SafeFileHandle socket = Create();
        try
        {
            using var scope = new Fd.HandleScope(socket);
            int r = Interop.connect(scope.Fd, &address, length);
            if (Interop.Interrupted(r, out Interop.Error errno))
            {
                // A connect interrupted by a signal completes asynchronously; wait for it.
                WaitReady(socket, Interop.POLLOUT, -1);
            }
            else if (r < 0)
            {
                throw ErrnoChecks.ExceptionFor(errno, "connect", path);
            }

            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One connect attempt that never waits: the socket is non-blocking while it connects (a Unix
    /// socket connects at once or fails, and a listener whose backlog is full answers EAGAIN instead
    /// of holding the caller), then blocking again. Returns <see langword="null"/> with the errno
    /// when the attempt failed (the socket is closed then).
    /// </summary>
    internal static SafeFileHandle? TryConnectNow(string path, out Interop.Error error)
    {
        uint length = FillAddress(path, out Interop.sockaddr_un address);
        SafeFileHandle socket = Create(nonBlocking: true);
        try
        {
            int r;
            using (var scope = new Fd.HandleScope(socket))
            {
                r = Interop.connect(scope.Fd, &address, length);
                error = r < 0 ? Interop.LastError : Interop.Error.None;
            }

            if (r < 0)
            {
                // EINPROGRESS (which AF_UNIX does not report) and EINTR are failed attempts too:
                // the caller tries again later on a fresh socket.
                socket.Dispose();
                return null;
            }

            Fd.SetNonBlocking(socket, false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The address family (<c>SO_DOMAIN</c>), type (<c>SO_TYPE</c>) and listening state
    /// (<c>SO_ACCEPTCONN</c>) of <paramref name="socket"/>; ENOTSOCK for an fd that is no socket.
    /// </summary>
    internal static (int Domain, int Type, bool Listening) Describe(SafeHandle socket)
    {
        using var scope = new Fd.HandleScope(socket);
        int domain, type, accepting;
        uint length = sizeof(int);
        ErrnoChecks.Check(Interop.getsockopt(scope.Fd, Interop.SOL_SOCKET, Interop.SO_DOMAIN, &domain, &length), "getsockopt(SO_DOMAIN)");
        length = sizeof(int);
        ErrnoChecks.Check(Interop.getsockopt(scope.Fd, Interop.SOL_SOCKET, Interop.SO_TYPE, &type, &length), "getsockopt(SO_TYPE)");
        length = sizeof(int);
        ErrnoChecks.Check(Interop.getsockopt(scope.Fd, Interop.SOL_SOCKET, Interop.SO_ACCEPTCONN, &accepting, &length), "getsockopt(SO_ACCEPTCONN)");
        return (domain, type, accepting != 0);
    }

    /// <summary>
    /// Accepts one connection, waiting at most <paramref name="timeoutMilliseconds"/> (-1 = forever).
    /// Returns <see langword="null"/> on timeout.
    /// </summary>
    internal static SafeFileHandle? Accept(SafeHandle listener, int timeoutMilliseconds = -1)
    {
        if (!WaitReady(listener, Interop.POLLIN, timeoutMilliseconds))
        {
            return null;
        }

        using var scope = new Fd.HandleScope(listener);
        int fd;
        Interop.Error errno;
        do
        {
            fd = Interop.accept4(scope.Fd, null, null, Interop.SOCK_CLOEXEC);
        }
        while (Interop.Interrupted(fd, out errno) || errno == Interop.Error.ECONNABORTED);

        return fd >= 0 ? Fd.Own(fd)
            : errno == Interop.Error.EAGAIN ? null
            : throw ErrnoChecks.ExceptionFor(errno, "accept4");
    }

    /// <summary>Whether the peer of a connected stream socket has closed or shut down its end (POLLRDHUP, POLLHUP or POLLERR now; never waits).</summary>
    internal static bool PeerHasClosed(SafeHandle socket)
    {
        using var scope = new Fd.HandleScope(socket);
        var pfd = new Interop.pollfd { fd = scope.Fd, events = Interop.POLLRDHUP };
        return Interop.poll(&pfd, 1, 0) > 0 && (pfd.revents & (Interop.POLLRDHUP | Interop.POLLHUP | Interop.POLLERR)) != 0;
    }

    /// <summary>
    /// Waits until <paramref name="handle"/> is ready for <paramref name="events"/>; false on
    /// timeout. Hang-up and error count as ready (the next call reports them).
    /// </summary>
    internal static bool WaitReady(SafeHandle handle, short events, int timeoutMilliseconds)
    {
        using var scope = new Fd.HandleScope(handle);
        var pfd = new Interop.pollfd { fd = scope.Fd, events = events };
        long deadline = timeoutMilliseconds < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMilliseconds;
        while (true)
        {
            int wait = timeoutMilliseconds < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
            int r = Interop.poll(&pfd, 1, wait);
            if (r > 0)
            {
                return true;
            }

            if (r == 0)
            {
                return false;
            }

            if (!Interop.Interrupted(r, out Interop.Error errno))
            {
                throw ErrnoChecks.ExceptionFor(errno, "poll");
            }
        }
    }

    /// <summary>
    /// The file type bits (<c>S_IFMT</c>) of <paramref name="path"/> without following a final
    /// symlink, or <see langword="null"/> when nothing exists there.
    /// </summary>
    internal static uint? FileTypeOf(string path)
    {
        // Large enough for struct stat on every supported architecture (144 bytes on x86_64).
        byte* buf = stackalloc byte[256];
        if (Interop.lstat(path, buf) < 0)
        {
            Interop.Error errno = Interop.LastError;
            if (errno is Interop.Error.ENOENT or Interop.Error.ENOTDIR)
            {
                return null;
            }

            throw ErrnoChecks.ExceptionFor(errno, "lstat", path);
        }

        uint mode = Interop.IsX64 ? ((Interop.stat_x64*)buf)->st_mode : ((Interop.stat_generic64*)buf)->st_mode;
        return mode & Interop.S_IFMT;
    }

    /// <summary>The peer's credentials (<c>SO_PEERCRED</c>).</summary>
    internal static Interop.ucred PeerCredentials(SafeHandle socket)
    {
        using var scope = new Fd.HandleScope(socket);
        Interop.ucred cred;
        uint length = (uint)sizeof(Interop.ucred);
        ErrnoChecks.Check(Interop.getsockopt(scope.Fd, Interop.SOL_SOCKET, Interop.SO_PEERCRED, &cred, &length), "getsockopt(SO_PEERCRED)");
        return cred;
    }

    /// <summary><c>shutdown(2)</c>; ENOTCONN is ignored (the peer already left).</summary>
    internal static void Shutdown(SafeHandle socket, int how = Interop.SHUT_RDWR)
    {
        using var scope = new Fd.HandleScope(socket);
        if (Interop.shutdown(scope.Fd, how) < 0 && Interop.LastError != Interop.Error.ENOTCONN)
        {
            ErrnoChecks.ThrowLast("shutdown");
        }
    }
}
