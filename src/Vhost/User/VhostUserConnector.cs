namespace Vhost.User;

/// <summary>
/// Connects to a vhost-user socket path, retrying while the peer is not there yet (the
/// socket file is missing or nobody listens: ENOENT, ECONNREFUSED, EAGAIN), QEMU-reconnect style.
/// </summary>
public static class VhostUserConnector
{
    /// <summary>The default pause between attempts.</summary>
    public static readonly TimeSpan DefaultRetryInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Connects, retrying every <paramref name="retryInterval"/> until <paramref name="timeout"/> has passed.</summary>
    /// <param name="path">The socket path.</param>
    /// <param name="timeout">How long to keep trying; <see cref="TimeSpan.Zero"/> tries once; <see cref="Timeout.InfiniteTimeSpan"/> forever.</param>
    /// <param name="retryInterval">The pause between attempts; <see cref="DefaultRetryInterval"/> when null.</param>
    /// <param name="cancellationToken">Cancels the retries.</param>
    /// <returns>The connected socket; pass it to <see cref="VhostUserFrontend"/>, which owns it from then on.</returns>
    /// <exception cref="ArgumentException">The path is empty or too long.</exception>
    /// <exception cref="VhostUserException">Every attempt failed (the last errno in <see cref="VhostException.ErrorCode"/>).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle Connect(string path, TimeSpan timeout, TimeSpan? retryInterval = null, CancellationToken cancellationToken = default)
    {
        UnixSocket.FillAddress(path, out _);
        TimeSpan interval = retryInterval ?? DefaultRetryInterval;
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Errno errno;
            try
            {
                return UnixSocket.Connect(path);
            }
            catch (VhostException e) when (e.Errno is Errno.ENOENT or Errno.ECONNREFUSED or Errno.EAGAIN)
            {
                errno = e.Errno.Value;
            }
            catch (VhostException e) when (e is not VhostUserException)
            {
                throw new VhostUserException(e.Errno ?? Errno.EIO, "connect", path);
            }

            long now = Environment.TickCount64;
            if (now >= deadline)
            {
                throw new VhostUserException(errno, "connect", $"{path} (gave up after {timeout.TotalMilliseconds:0} ms)");
            }

            long wait = Math.Min((long)interval.TotalMilliseconds, deadline - now);
            if (cancellationToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(wait)))
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }
}
