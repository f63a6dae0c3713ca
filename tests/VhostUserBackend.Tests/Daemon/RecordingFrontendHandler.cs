using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>The front-end's side of the back-end channel: records what the back-end sends.</summary>
internal sealed class RecordingFrontendHandler : IVhostUserFrontendRequestHandler
{
    private int _configChanges;

    public int ConfigChanges => Volatile.Read(ref _configChanges);

    /// <summary>Queue index of every VRING_CALL, in arrival order.</summary>
    public System.Collections.Concurrent.BlockingCollection<uint> Calls { get; } = [];

    public System.Collections.Concurrent.BlockingCollection<uint> Errors { get; } = [];

    public void ConfigChange() => Interlocked.Increment(ref _configChanges);

    public void VringCall(int queueIndex) => Calls.Add((uint)queueIndex);

    public void VringError(int queueIndex) => Errors.Add((uint)queueIndex);
}
