using VhostUserBackend;

namespace Vhost.HostileTests.Targets;

/// <summary>The library's own daemon, serving <see cref="EchoDevice"/> in this process on a fresh socket.</summary>
public sealed class InProcessTarget : IDaemonTarget
{
    private readonly VhostUserDaemon _daemon;

    /// <summary>Starts the daemon.</summary>
    /// <param name="options">Daemon options (memory policy and such); defaults when null.</param>
    public InProcessTarget(VhostUserDaemonOptions? options = null)
    {
        Device = new EchoDevice();
        SocketPath = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}.sock");
        _daemon = new VhostUserDaemon(Device, options ?? new VhostUserDaemonOptions());
        _daemon.Start(SocketPath);
    }

    /// <summary>The device.</summary>
    public EchoDevice Device { get; }

    /// <summary>The daemon.</summary>
    public VhostUserDaemon Daemon => _daemon;

    /// <inheritdoc/>
    public string Name => "in-process daemon (echo device)";

    /// <inheritdoc/>
    public string SocketPath { get; }

    /// <inheritdoc/>
    public bool IsAlive => !_daemon.WaitAsync().IsCompleted;

    /// <inheritdoc/>
    public IDeviceExercise Exercise { get; } = new EchoExercise();

    /// <inheritdoc/>
    public int CountFds() => OpenFds.Count();

    /// <inheritdoc/>
    public int CountMappings() => File.ReadLines("/proc/self/maps").Count();

    /// <inheritdoc/>
    public long ResidentKiB() => ProcFs.ResidentKiB(Environment.ProcessId);

    /// <inheritdoc/>
    public bool WaitIdle(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (_daemon.IsConnected)
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            Thread.Sleep(1);
        }

        return true;
    }

    /// <inheritdoc/>
    public string Diagnostics() => $"connections served: {_daemon.ConnectionCount}";

    /// <inheritdoc/>
    public void Dispose() => _daemon.Dispose();
}
