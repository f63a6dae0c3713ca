using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

/// <summary>
/// Pipes for a one-shot transfer with a peer (the vhost-user device state): the whole content is
/// read to end of file or written, with non-blocking I/O and <c>poll(2)</c> against a deadline, so
/// a peer that never writes, never reads or never closes its end cannot hold the calling thread
/// past that deadline, and a peer that writes without end cannot make it allocate without bound.
/// </summary>
internal static unsafe class BoundedPipe
{
    /// <summary>How often a wait wakes to look at its cancellation token.</summary>
    private const int PollSliceMilliseconds = 100;

    /// <summary><c>pipe2(O_CLOEXEC)</c>: a new pipe.</summary>
    /// <returns>The read end and the write end.</returns>
    internal static (SafeFileHandle Read, SafeFileHandle Write) Create()
    {
        int* fds = stackalloc int[2];
        ErrnoChecks.Check(Interop.pipe2(fds, Interop.O_CLOEXEC), "pipe2");
        return (Fd.Own(fds[0]), Fd.Own(fds[1]));
    }

    /// <summary>Whether <paramref name="handle"/> is a pipe (FIFO), the kind of fd the device-state transfer is specified with.</summary>
    /// <param name="handle">The fd.</param>
    /// <returns>True for a pipe end.</returns>
    internal static bool IsPipe(SafeHandle handle) => Fd.Stat(handle).FileType == Interop.S_IFIFO;

    /// <summary>Reads <paramref name="handle"/> to end of file.</summary>
    /// <param name="handle">The read end (made non-blocking).</param>
    /// <param name="maxBytes">The most the content may hold.</param>
    /// <param name="timeout">The time the whole transfer may take.</param>
    /// <param name="cancellation">Ends the wait early.</param>
    /// <returns>The content.</returns>
    /// <exception cref="InvalidDataException">More than <paramref name="maxBytes"/> arrived.</exception>
    /// <exception cref="TimeoutException">No end of file before the deadline.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled.</exception>
    internal static byte[] ReadToEnd(SafeHandle handle, int maxBytes, TimeSpan timeout, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        Fd.SetNonBlocking(handle, true);
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var content = new MemoryStream();
        byte[] buffer = new byte[64 * 1024];
        while (true)
        {
            int n = Fd.TryRead(handle, buffer, out Interop.Error errno);
            if (n == 0)
            {
                return content.ToArray();
            }

            if (n > 0)
            {
                if (content.Length + n > maxBytes)
                {
                    throw new InvalidDataException($"the peer sent more than the {maxBytes} bytes the state may hold");
                }

                content.Write(buffer, 0, n);
                continue;
            }

            if (errno != Interop.Error.EAGAIN)
            {
                throw ErrnoChecks.ExceptionFor(errno, "read", "device state pipe");
            }

            Wait(handle, Interop.POLLIN, deadline, "the peer did not close its end of the pipe (no end of file)", cancellation);
        }
    }

    /// <summary>Writes all of <paramref name="content"/> into <paramref name="handle"/>.</summary>
    /// <param name="handle">The write end (made non-blocking).</param>
    /// <param name="content">The bytes.</param>
    /// <param name="timeout">The time the whole transfer may take.</param>
    /// <param name="cancellation">Ends the wait early.</param>
    /// <exception cref="TimeoutException">The peer did not read it all before the deadline.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled.</exception>
    internal static void WriteAll(SafeHandle handle, ReadOnlySpan<byte> content, TimeSpan timeout, CancellationToken cancellation = default)
    {
        Fd.SetNonBlocking(handle, true);
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!content.IsEmpty)
        {
            int n = Fd.TryWrite(handle, content, out Interop.Error errno);
            if (n > 0)
            {
                content = content[n..];
                continue;
            }

            if (n < 0 && errno != Interop.Error.EAGAIN)
            {
                throw ErrnoChecks.ExceptionFor(errno, "write", "device state pipe");
            }

            Wait(handle, Interop.POLLOUT, deadline, "the peer did not read the state", cancellation);
        }
    }

    private static void Wait(SafeHandle handle, short events, long deadline, string what, CancellationToken cancellation)
    {
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                throw new TimeoutException(what);
            }

            bool added = false;
            handle.DangerousAddRef(ref added);
            try
            {
                Interop.pollfd poll = new() { fd = Fd.RawOf(handle), events = events };
                int ready = Interop.poll(&poll, 1, (int)Math.Min(left, PollSliceMilliseconds));
                if (ready > 0)
                {
                    return;
                }

                if (ready < 0 && !Interop.Interrupted(ready, out Interop.Error errno))
                {
                    throw ErrnoChecks.ExceptionFor(errno, "poll", "device state pipe");
                }
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }
    }
}
