using Microsoft.Win32.SafeHandles;
using VhostUserBackend;

namespace VhostSamples;

/// <summary>
/// Where a sample daemon meets its front-end, from its options: <c>--socket-path</c> (listen),
/// <c>--connect</c> (client mode: the front-end listens, the daemon connects and reconnects),
/// <c>--fd</c> (an inherited socket, connected or listening), or, with none of them, the socket
/// a service manager passed (systemd socket activation, <c>LISTEN_FDS</c>), else the default path.
/// </summary>
internal sealed class SampleEndpoint : IDisposable
{
    private SafeFileHandle? _socket;

    private SampleEndpoint(string? listenPath, string? connectPath, SafeFileHandle? socket, string description)
    {
        ListenPath = listenPath;
        ConnectPath = connectPath;
        _socket = socket;
        Description = description;
    }

    /// <summary>The path the daemon listens on, in server mode.</summary>
    public string? ListenPath { get; }

    /// <summary>The front-end's path, in client mode.</summary>
    public string? ConnectPath { get; }

    /// <summary>What the endpoint is, for the log.</summary>
    public string Description { get; }

    /// <summary>
    /// Picks the endpoint from the options (at most one of them). Returns an error message (bad
    /// usage, or socket activation that is not for this process) or <see langword="null"/>.
    /// </summary>
    public static string? TryCreate(string? socketPath, string? connectPath, int? fd, Func<string> defaultPath, out SampleEndpoint? endpoint)
    {
        endpoint = null;
        int given = (socketPath is null ? 0 : 1) + (connectPath is null ? 0 : 1) + (fd is null ? 0 : 1);
        if (given > 1)
        {
            return "--socket-path, --connect and --fd are mutually exclusive";
        }

        if (fd is < 0)
        {
            return $"--fd {fd}: not a file descriptor";
        }

        if (socketPath is not null)
        {
            endpoint = Listen(socketPath);
        }
        else if (connectPath is not null)
        {
            endpoint = Connect(connectPath);
        }
        else if (fd is int raw)
        {
            endpoint = Inherited(raw);
        }
        else if (SystemdSocketActivation.IsActivated)
        {
            return TryActivated(out endpoint);
        }
        else
        {
            endpoint = Listen(defaultPath());
        }

        return null;
    }

    /// <summary>Listen on <paramref name="path"/>.</summary>
    public static SampleEndpoint Listen(string path) => new(path, null, null, path);

    /// <summary>Client mode: connect (and reconnect) to the front-end listening on <paramref name="path"/>.</summary>
    public static SampleEndpoint Connect(string path) => new(null, path, null, $"connecting to {path} (client mode)");

    /// <summary>The inherited socket <paramref name="fd"/> (checked when the daemon starts).</summary>
    public static SampleEndpoint Inherited(int fd) => new(null, null, new SafeFileHandle(fd, ownsHandle: true), $"fd {fd}");

    /// <summary>The first socket systemd passed (<c>LISTEN_FDS</c>); an error message when it is not for this process or not a Unix stream socket.</summary>
    public static string? TryActivated(out SampleEndpoint? endpoint)
    {
        endpoint = null;
        try
        {
            SafeFileHandle? passed = SystemdSocketActivation.TakeFirstSocket();
            if (passed is null)
            {
                return "socket activation: LISTEN_FDS is not set";
            }

            endpoint = new SampleEndpoint(null, null, passed, $"fd {SystemdSocketActivation.FirstFd} (systemd socket activation)");
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or Vhost.VhostException)
        {
            return "socket activation: " + e.Message;
        }
    }

    /// <summary>Starts <paramref name="daemon"/> here (an inherited socket belongs to the daemon from then on).</summary>
    public void Start(VhostUserDaemon daemon)
    {
        if (_socket is not null)
        {
            daemon.Start(_socket);
            _socket = null;
        }
        else if (ConnectPath is not null)
        {
            daemon.Connect(ConnectPath);
        }
        else
        {
            daemon.Start(ListenPath!);
        }
    }

    /// <summary>Closes an inherited socket no daemon took.</summary>
    public void Dispose() => _socket?.Dispose();
}
