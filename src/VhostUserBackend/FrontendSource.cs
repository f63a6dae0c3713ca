using Microsoft.Win32.SafeHandles;

namespace VhostUserBackend;

/// <summary>
/// Where the daemon's control thread gets its front-ends from, one connected socket after another:
/// a listener (<see cref="ListeningFrontendSource"/>), one connected socket
/// (<see cref="ConnectedFrontendSource"/>), or a front-end that listens and is connected to again
/// whenever it goes away (<see cref="ReconnectingFrontendSource"/>).
/// </summary>
internal abstract class FrontendSource : IDisposable
{
    /// <summary>The socket path the daemon listens on, when it does.</summary>
    public virtual string? ListenPath => null;

    /// <summary>
    /// Whether the source can give no more front-ends after <see cref="Next"/> failed (its socket
    /// is closed): the daemon then stops instead of trying again.
    /// </summary>
    public virtual bool IsExhausted => false;

    /// <summary>
    /// Waits for the next front-end. <paramref name="previousLasted"/> is how long the previous
    /// connection was served (<see langword="null"/> before the first).
    /// </summary>
    /// <returns>The connected socket (the caller owns it), or <see langword="null"/> when the source has no more.</returns>
    /// <exception cref="OperationCanceledException">The daemon is stopping.</exception>
    /// <exception cref="Vhost.VhostException">Getting a front-end failed this time (the daemon logs it and asks again unless <see cref="IsExhausted"/>).</exception>
    public abstract SafeFileHandle? Next(TimeSpan? previousLasted, CancellationToken cancellationToken);

    /// <summary>Releases what the source owns.</summary>
    public abstract void Dispose();
}
