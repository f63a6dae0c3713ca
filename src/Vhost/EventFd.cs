using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vhost;

/// <summary>
/// A Linux eventfd: the kick, call and error notifiers of a virtqueue. Created close-on-exec;
/// owns its fd and closes it on dispose.
/// </summary>
/// <remarks>
/// <see cref="Signal"/> adds to the 64-bit counter; <see cref="Read"/> returns and clears it
/// (blocking while it is zero, unless the eventfd is non-blocking); <see cref="TryRead"/> never
/// blocks on a non-blocking eventfd and returns <see langword="false"/> on EAGAIN.
/// Thread-safe: the kernel serialises reads and writes.
/// </remarks>
public sealed class EventFd : SafeHandle
{
    /// <summary>Creates an eventfd.</summary>
    /// <param name="flags">Non-blocking and semaphore options.</param>
    /// <param name="initialValue">The counter's initial value.</param>
    /// <exception cref="VhostException">The <c>eventfd</c> call failed (for example EMFILE).</exception>
    public EventFd(EventFdFlags flags = EventFdFlags.None, uint initialValue = 0)
        : base(-1, ownsHandle: true)
    {
        int fd = Interop.eventfd(initialValue, Interop.EFD_CLOEXEC | (int)flags);
        if (fd < 0)
        {
            ErrnoChecks.ThrowLast("eventfd");
        }

        SetHandle(fd);
        Flags = flags;
    }

    private EventFd(int fd, EventFdFlags flags)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
        Flags = flags;
    }

    /// <summary>The flags the eventfd was created with.</summary>
    public EventFdFlags Flags { get; }

    /// <summary>Whether reads return EAGAIN instead of blocking.</summary>
    public bool IsNonBlocking => (Flags & EventFdFlags.NonBlocking) != 0;

    /// <inheritdoc/>
    public override bool IsInvalid => handle < 0;

    /// <summary>
    /// Takes ownership of an fd that is expected to be an eventfd (for example one received over
    /// a vhost-user socket). The handle passed in is consumed: it is invalid afterwards.
    /// </summary>
    /// <param name="handle">The owned fd.</param>
    /// <param name="nonBlocking">Whether to switch the fd to non-blocking mode; <see langword="false"/> leaves the mode as it is, and <see cref="IsNonBlocking"/> reports it.</param>
    /// <returns>An <see cref="EventFd"/> owning the fd.</returns>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public static EventFd FromHandle(SafeFileHandle handle, bool nonBlocking = false)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.IsInvalid || handle.IsClosed)
        {
            throw new ArgumentException("the handle is closed or invalid", nameof(handle));
        }

        if (nonBlocking)
        {
            global::Fd.SetNonBlocking(handle, true);
        }

        // Duplicate, then release the caller's: this keeps ownership rules simple for SafeHandle.
        SafeFileHandle dup = global::Fd.Duplicate(handle);
        handle.Dispose();

        // Report the mode the fd really has: a received fd may already be non-blocking.
        EventFdFlags flags;
        try
        {
            flags = global::Fd.IsNonBlocking(dup) ? EventFdFlags.NonBlocking : EventFdFlags.None;
        }
        catch
        {
            dup.Dispose();
            throw;
        }

        int fd = (int)dup.DangerousGetHandle();
        dup.SetHandleAsInvalid();
        return new EventFd(fd, flags);
    }

    /// <summary>Adds <paramref name="value"/> to the counter, waking any reader.</summary>
    /// <param name="value">The amount to add (must not be 0 or <see cref="ulong.MaxValue"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is 0 or <see cref="ulong.MaxValue"/>.</exception>
    /// <exception cref="VhostException">The write failed (for example EAGAIN when the counter would overflow on a non-blocking eventfd).</exception>
    public void Signal(ulong value = 1)
    {
        if (!TrySignal(value))
        {
            throw new VhostException(Errno.EAGAIN, "write(eventfd)", "the counter would overflow");
        }
    }

    /// <summary>Adds <paramref name="value"/> to the counter; returns <see langword="false"/> when a non-blocking eventfd's counter would overflow.</summary>
    /// <param name="value">The amount to add.</param>
    /// <returns><see langword="true"/> when the value was added.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is 0 or <see cref="ulong.MaxValue"/>.</exception>
    /// <exception cref="VhostException">The write failed for another reason.</exception>
    public bool TrySignal(ulong value = 1)
    {
        if (value is 0 or ulong.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "an eventfd accepts values from 1 to 2^64-2");
        }

        // eventfd counters are native-endian u64.
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        MemoryMarshal.Write(bytes, in value);

        int n = global::Fd.TryWrite(this, bytes, out Interop.Error errno);
        if (n == sizeof(ulong))
        {
            return true;
        }

        if ((Errno)errno == Errno.EAGAIN)
        {
            return false;
        }

        throw new VhostException((Errno)errno, "write(eventfd)");
    }

    /// <summary>
    /// Reads and clears the counter (or decrements it by one in semaphore mode). Blocks while the
    /// counter is zero on a blocking eventfd.
    /// </summary>
    /// <returns>The counter value read.</returns>
    /// <exception cref="VhostException">The read failed, including EAGAIN on an empty non-blocking eventfd.</exception>
    public ulong Read()
    {
        if (TryReadCore(out ulong value, out Errno errno))
        {
            return value;
        }

        throw new VhostException(errno, "read(eventfd)");
    }

    /// <summary>Reads the counter without blocking on a non-blocking eventfd.</summary>
    /// <param name="value">The counter value, or 0 when nothing was pending.</param>
    /// <returns><see langword="false"/> when the counter was zero (EAGAIN).</returns>
    /// <exception cref="VhostException">The read failed for a reason other than EAGAIN.</exception>
    public bool TryRead(out ulong value)
    {
        if (TryReadCore(out value, out Errno errno))
        {
            return true;
        }

        if (errno == Errno.EAGAIN)
        {
            return false;
        }

        throw new VhostException(errno, "read(eventfd)");
    }

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => Interop.close((int)handle) == 0;

    private bool TryReadCore(out ulong value, out Errno errno)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        int n = global::Fd.TryRead(this, bytes, out Interop.Error error);
        errno = (Errno)error;
        if (n == sizeof(ulong))
        {
            value = BitConverter.ToUInt64(bytes);
            return true;
        }

        value = 0;
        if (n >= 0)
        {
            errno = Errno.EIO;
        }

        return false;
    }
}
