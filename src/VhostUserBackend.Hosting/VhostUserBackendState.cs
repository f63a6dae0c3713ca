namespace VhostUserBackend.Hosting;

/// <summary>The life cycle of a hosted vhost-user daemon (<see cref="VhostUserBackendService{TDevice}.State"/>).</summary>
public enum VhostUserBackendState
{
    /// <summary>The host has not started the service yet.</summary>
    NotStarted,

    /// <summary>The daemon listens and serves front-ends (see <see cref="VhostUserBackendService{TDevice}.IsConnected"/>).</summary>
    Running,

    /// <summary>The host stopped the service; the front-end was disconnected and every resource released.</summary>
    Stopped,

    /// <summary>The daemon could not start, or ended without being asked to (see <see cref="VhostUserBackendService{TDevice}.Failure"/>).</summary>
    Faulted,
}
