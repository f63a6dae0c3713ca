using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Vhost;

namespace VhostUserBackend;

/// <summary>
/// Client mode: the front-end listens (QEMU <c>-chardev socket,server=on</c>) and the daemon
/// connects to it, again whenever it goes away, for as long as the daemon runs. Attempts never
/// wait (a non-blocking connect: a full backlog is a failed attempt, not a wait); between them the
/// daemon pauses <see cref="VhostUserDaemonOptions.ReconnectDelay"/>, doubled after each failure up
/// to <see cref="VhostUserDaemonOptions.MaxReconnectDelay"/>, on the stop token (so
/// <see cref="VhostUserDaemon.Stop"/> ends a pause at once).
/// </summary>
internal sealed class ReconnectingFrontendSource(string path, TimeSpan firstDelay, TimeSpan maxDelay, ILogger logger) : FrontendSource
{
    private readonly TimeSpan _firstDelay = firstDelay;
    private TimeSpan _delay = firstDelay;

    /// <inheritdoc/>
    public override SafeFileHandle? Next(TimeSpan? previousLasted, CancellationToken cancellationToken)
    {
        if (previousLasted is TimeSpan lasted)
        {
            // A connection that lasted starts the backoff over; one that ended at once (a front-end
            // that accepts and closes, or refuses the device) keeps it growing.
            if (lasted >= maxDelay)
            {
                _delay = _firstDelay;
            }

            Pause(cancellationToken);
        }

        Errno? lastError = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            SafeFileHandle? socket = UnixSocket.TryConnectNow(path, out Interop.Error error);
            if (socket is not null)
            {
                Log.ConnectedToFrontend(logger, path);
                return socket;
            }

            var errno = (Errno)(int)error;
            if (errno != lastError)
            {
                Log.FrontendNotReachable(logger, path, errno, _delay.TotalMilliseconds);
                lastError = errno;
            }

            Pause(cancellationToken);
        }
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
    }

    private void Pause(CancellationToken cancellationToken)
    {
        if (cancellationToken.WaitHandle.WaitOne(_delay))
        {
            cancellationToken.ThrowIfCancellationRequested();
        }

        _delay = TimeSpan.FromTicks(Math.Min(_delay.Ticks * 2, maxDelay.Ticks));
    }
}
