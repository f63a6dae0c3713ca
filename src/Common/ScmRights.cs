using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

/// <summary>
/// <c>sendmsg</c>/<c>recvmsg</c> with <c>SCM_RIGHTS</c> file-descriptor passing on a Unix socket.
/// Fds travel in the same call as the bytes they belong to; received fds always arrive with
/// <c>FD_CLOEXEC</c> (<c>MSG_CMSG_CLOEXEC</c>); a truncated control message is an error after
/// every fd that did arrive has been closed.
/// </summary>
internal static unsafe class ScmRights
{
    /// <summary>The most fds one message may carry (the vhost-user and rust-vmm limit).</summary>
    internal const int MaxFds = 32;

    /// <summary>The control buffer size that holds <see cref="MaxFds"/> fds.</summary>
    internal static int ControlSpace => Interop.CmsgSpace(MaxFds * sizeof(int));

    /// <summary>
    /// Sends <paramref name="data"/> with <paramref name="fds"/> attached, with <c>MSG_NOSIGNAL</c>
    /// (a closed peer is EPIPE, not SIGPIPE). Retries EINTR. Returns the number of bytes sent, or
    /// -1 with <paramref name="errno"/> set (EAGAIN on a full nonblocking socket, EPIPE, ...).
    /// </summary>
    internal static int TrySend(SafeHandle socket, ReadOnlySpan<byte> data, ReadOnlySpan<SafeHandle> fds, out Interop.Error errno)
    {
        if (fds.Length > MaxFds)
        {
            throw new ArgumentException($"at most {MaxFds} fds can be sent with one message, not {fds.Length}", nameof(fds));
        }

        // Hold a reference on every fd for the duration of the call, so none can be closed and reused.
        Span<bool> added = stackalloc bool[MaxFds];
        int addedCount = 0;
        using var sock = new Fd.HandleScope(socket);
        try
        {
            int controlLength = Interop.CmsgSpace(MaxFds * sizeof(int));
            byte* control = stackalloc byte[controlLength];
            new Span<byte>(control, controlLength).Clear();
            for (int i = 0; i < fds.Length; i++)
            {
                ArgumentNullException.ThrowIfNull(fds[i]);
                bool ok = false;
                fds[i].DangerousAddRef(ref ok);
                added[i] = ok;
                addedCount = i + 1;
                ((int*)(control + Interop.CmsgLen(0)))[i] = (int)fds[i].DangerousGetHandle();
            }

            fixed (byte* p = data)
            {
                var iov = new Interop.iovec { iov_base = p, iov_len = (nuint)data.Length };
                var msg = new Interop.msghdr { msg_iov = &iov, msg_iovlen = 1 };
                if (!fds.IsEmpty)
                {
                    var header = (Interop.cmsghdr*)control;
                    header->cmsg_len = (nuint)Interop.CmsgLen(fds.Length * sizeof(int));
                    header->cmsg_level = Interop.SOL_SOCKET;
                    header->cmsg_type = Interop.SCM_RIGHTS;
                    msg.msg_control = control;
                    msg.msg_controllen = (nuint)Interop.CmsgSpace(fds.Length * sizeof(int));
                }

                nint n;
                do
                {
                    n = Interop.sendmsg(sock.Fd, &msg, Interop.MSG_NOSIGNAL);
                }
                while (Interop.Interrupted(n, out errno));

                return n >= 0 ? (int)n : -1;
            }
        }
        finally
        {
            for (int i = 0; i < addedCount; i++)
            {
                if (added[i])
                {
                    fds[i].DangerousRelease();
                }
            }
        }
    }

    /// <summary>Sends all of <paramref name="data"/> (fds with the first chunk); throws on error.</summary>
    internal static void SendAll(SafeHandle socket, ReadOnlySpan<byte> data, ReadOnlySpan<SafeHandle> fds)
    {
        int sent = TrySend(socket, data, fds, out Interop.Error errno);
        if (sent < 0)
        {
            throw ErrnoChecks.ExceptionFor(errno, "sendmsg");
        }

        while (sent < data.Length)
        {
            int n = TrySend(socket, data[sent..], ReadOnlySpan<SafeHandle>.Empty, out errno);
            if (n < 0)
            {
                throw ErrnoChecks.ExceptionFor(errno, "sendmsg");
            }

            sent += n;
        }
    }

    /// <summary>
    /// Receives into <paramref name="buffer"/> and collects the fds that arrive with it into
    /// <paramref name="fds"/> as owned handles. Returns the byte count (0 = orderly close), or -1
    /// with <paramref name="errno"/> set (EAGAIN on an empty nonblocking socket). When the kernel
    /// truncated the control data (<c>MSG_CTRUNC</c>: more fds than <paramref name="maxFds"/>),
    /// every fd that arrived is closed and a the assembly's errno exception with ENOBUFS is thrown.
    /// </summary>
    internal static int TryReceive(SafeHandle socket, Span<byte> buffer, List<SafeFileHandle> fds, out Interop.Error errno, int flags = 0, int maxFds = MaxFds)
    {
        if (maxFds < 0 || maxFds > MaxFds)
        {
            throw new ArgumentOutOfRangeException(nameof(maxFds));
        }

        using var sock = new Fd.HandleScope(socket);

        // CMSG_LEN, not CMSG_SPACE: the kernel installs (controllen - sizeof(cmsghdr)) / 4 fds, so
        // CMSG_SPACE of an odd count would make room for one fd more than maxFds (and no MSG_CTRUNC).
        int controlLength = Interop.CmsgLen(maxFds * sizeof(int));
        byte* control = stackalloc byte[Interop.CmsgSpace(MaxFds * sizeof(int))];
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var iov = new Interop.iovec { iov_base = p, iov_len = (nuint)buffer.Length };
                var msg = new Interop.msghdr
                {
                    msg_iov = &iov,
                    msg_iovlen = 1,
                    msg_control = maxFds > 0 ? control : null,
                    msg_controllen = maxFds > 0 ? (nuint)controlLength : 0,
                };
                nint n = Interop.recvmsg(sock.Fd, &msg, flags | Interop.MSG_CMSG_CLOEXEC);
                if (Interop.Interrupted(n, out errno))
                {
                    continue;
                }

                if (n < 0)
                {
                    return -1;
                }

                int first = fds.Count;
                CollectFds(control, msg.msg_controllen, fds);
                if ((msg.msg_flags & Interop.MSG_CTRUNC) != 0 || fds.Count - first > maxFds)
                {
                    for (int i = fds.Count - 1; i >= first; i--)
                    {
                        fds[i].Dispose();
                        fds.RemoveAt(i);
                    }

                    throw ErrnoChecks.ExceptionFor(Interop.Error.ENOBUFS, "recvmsg", "the peer sent more file descriptors than the message may carry (MSG_CTRUNC); every received descriptor was closed");
                }

                return (int)n;
            }
        }
    }

    /// <summary>Walks the control buffer and takes ownership of every SCM_RIGHTS fd in it.</summary>
    private static void CollectFds(byte* control, nuint controlLength, List<SafeFileHandle> fds)
    {
        if (control == null)
        {
            return;
        }

        int headerSize = Interop.CmsgLen(0);
        byte* end = control + (nint)controlLength;
        byte* c = control;
        while (c + sizeof(Interop.cmsghdr) <= end)
        {
            var header = (Interop.cmsghdr*)c;
            nuint length = header->cmsg_len;
            if (length < (nuint)sizeof(Interop.cmsghdr) || c + (nint)length > end)
            {
                break;
            }

            if (header->cmsg_level == Interop.SOL_SOCKET && header->cmsg_type == Interop.SCM_RIGHTS)
            {
                int count = ((int)length - headerSize) / sizeof(int);
                int* data = (int*)(c + headerSize);
                for (int i = 0; i < count; i++)
                {
                    fds.Add(Fd.Own(data[i]));
                }
            }

            c += Interop.CmsgAlign((int)length);
        }
    }
}
