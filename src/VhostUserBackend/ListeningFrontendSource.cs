using Microsoft.Win32.SafeHandles;
using Vhost.User;

namespace VhostUserBackend;

/// <summary>Front-ends accepted one after another on a listening socket (the daemon's server mode).</summary>
internal sealed class ListeningFrontendSource(VhostUserListener listener, bool ownsListener, bool hasPath) : FrontendSource
{
    /// <inheritdoc/>
    public override string? ListenPath => hasPath ? listener.Path : null;

    /// <inheritdoc/>
    public override bool IsExhausted => listener.Handle.IsClosed;

    /// <inheritdoc/>
    public override SafeFileHandle? Next(TimeSpan? previousLasted, CancellationToken cancellationToken) => listener.Accept(cancellationToken);

    /// <inheritdoc/>
    public override void Dispose()
    {
        if (ownsListener)
        {
            listener.Dispose();
        }
    }
}
