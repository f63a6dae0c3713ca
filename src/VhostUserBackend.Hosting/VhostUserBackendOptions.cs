namespace VhostUserBackend.Hosting;

/// <summary>
/// How a hosted vhost-user device is served (bound from configuration, for example the section
/// <c>"VhostUser": { "SocketPath": "/run/my-device.sock" }</c>).
/// </summary>
public sealed class VhostUserBackendOptions
{
    /// <summary>
    /// The Unix socket path the daemon listens on (mode 0600; a stale socket file is replaced and the
    /// file is removed when the host stops). Required.
    /// </summary>
    public string? SocketPath { get; set; }

    /// <summary>
    /// Whether the health check reports <c>Degraded</c> (instead of <c>Healthy</c>) while no
    /// front-end is connected. Default <see langword="false"/>: a listening daemon is healthy.
    /// </summary>
    public bool DegradedWhenIdle { get; set; }

    /// <summary>
    /// The daemon's security and policy settings (the section <c>"Daemon"</c>: <c>MemoryFilePolicy</c>,
    /// <c>AllowedPeerUserIds</c>, <c>AllowedPeerGroupIds</c>, <c>InFlightTimeout</c>). A
    /// <see cref="VhostUserDaemonOptions.WorkerGroup"/> cannot come from configuration: set it in code.
    /// </summary>
    public VhostUserDaemonOptions Daemon { get; set; } = new();
}
