namespace VhostUserBackend.Hosting;

/// <summary>
/// How a hosted vhost-user device is served (bound from configuration, for example the section
/// <c>"VhostUser": { "SocketPath": "/run/my-device.sock" }</c>).
/// </summary>
public sealed class VhostUserBackendOptions
{
    /// <summary>
    /// The Unix socket path the daemon listens on (mode 0600; a stale socket file is replaced and the
    /// file is removed when the host stops). One of this, <see cref="ConnectPath"/>, or a socket
    /// passed by systemd (<see cref="SocketActivation"/>) is required.
    /// </summary>
    public string? SocketPath { get; set; }

    /// <summary>
    /// Client mode: the path of a front-end that listens (QEMU <c>-chardev socket,server=on,wait=off</c>);
    /// the daemon connects to it, and again whenever it goes away, with the backoff of
    /// <see cref="VhostUserDaemonOptions.ReconnectDelay"/> (see <see cref="VhostUserDaemon.Connect"/>).
    /// Excludes <see cref="SocketPath"/>.
    /// </summary>
    public string? ConnectPath { get; set; }

    /// <summary>
    /// Whether a socket passed by systemd (<c>LISTEN_FDS</c>/<c>LISTEN_PID</c> set for this process,
    /// see <see cref="SystemdSocketActivation"/>) is served instead of <see cref="SocketPath"/> /
    /// <see cref="ConnectPath"/>. Default <see langword="false"/>: opt in, as with Kestrel's
    /// <c>UseSystemd()</c>, because fd 3 may belong to something else in the process. With several
    /// devices in one host, the first to start takes the socket. A listening socket serves
    /// front-ends one after another, a connected one (<c>Accept=yes</c>) one front-end. Activation
    /// variables naming another process fail the start.
    /// </summary>
    public bool SocketActivation { get; set; }

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
