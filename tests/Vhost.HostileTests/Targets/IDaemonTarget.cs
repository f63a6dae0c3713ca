namespace Vhost.HostileTests.Targets;

/// <summary>
/// A vhost-user daemon under attack: the in-process <see cref="VhostUserBackend.VhostUserDaemon"/>
/// (<see cref="InProcessTarget"/>) or a sample daemon started as a separate process
/// (<see cref="ProcessTarget"/>). The suites talk to it only through its socket.
/// </summary>
public interface IDaemonTarget : IDisposable
{
    /// <summary>A short name for reports.</summary>
    string Name { get; }

    /// <summary>The socket the daemon listens on.</summary>
    string SocketPath { get; }

    /// <summary>Whether the daemon still runs (its process, or its control thread).</summary>
    bool IsAlive { get; }

    /// <summary>How a well-formed request is made and checked on this device.</summary>
    IDeviceExercise Exercise { get; }

    /// <summary>The number of fds the daemon's process holds open.</summary>
    /// <returns>The count.</returns>
    int CountFds();

    /// <summary>The number of mappings in the daemon's process (<c>/proc/PID/maps</c> lines).</summary>
    /// <returns>The count.</returns>
    int CountMappings();

    /// <summary>Resident memory of the daemon's process in KiB.</summary>
    /// <returns>VmRSS.</returns>
    long ResidentKiB();

    /// <summary>Waits until the daemon has released the last front-end (where that can be observed).</summary>
    /// <param name="timeout">The limit.</param>
    /// <returns>False when it still served a front-end at the limit.</returns>
    bool WaitIdle(TimeSpan timeout);

    /// <summary>What the daemon said lately (a process's stderr tail), for failure messages.</summary>
    /// <returns>Text, possibly empty.</returns>
    string Diagnostics();
}
