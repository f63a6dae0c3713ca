using Microsoft.Win32.SafeHandles;

namespace VhostUserBackend;

/// <summary>The one front-end on an already connected socket (<c>--fd</c>, systemd <c>Accept=yes</c>); nothing after it.</summary>
internal sealed class ConnectedFrontendSource(SafeFileHandle connectedSocket) : FrontendSource
{
    private SafeFileHandle? _socket = connectedSocket;

    /// <inheritdoc/>
    public override SafeFileHandle? Next(TimeSpan? previousLasted, CancellationToken cancellationToken)
        => Interlocked.Exchange(ref _socket, null);

    /// <inheritdoc/>
    public override void Dispose() => Interlocked.Exchange(ref _socket, null)?.Dispose();
}
