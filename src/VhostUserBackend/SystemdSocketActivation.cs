using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace VhostUserBackend;

/// <summary>
/// systemd socket activation (<c>sd_listen_fds(3)</c> semantics): the sockets a service manager
/// passed start at fd 3, <c>LISTEN_FDS</c> says how many, and <c>LISTEN_PID</c> must be this
/// process (a variable inherited from a parent is not meant for it). The variables
/// (<c>LISTEN_FDS</c>, <c>LISTEN_PID</c>, <c>LISTEN_FDNAMES</c>) are removed once read, from .NET's
/// environment and the native one, so processes started later do not inherit them; the passed fds
/// get close-on-exec. The daemon serves the first socket (<see cref="VhostUserDaemon.Start(SafeFileHandle)"/>):
/// a listening one (<c>Accept=no</c>, the usual unit) front-end after front-end, a connected one
/// (<c>Accept=yes</c>) once.
/// </summary>
public static class SystemdSocketActivation
{
    /// <summary>The first passed fd (<c>SD_LISTEN_FDS_START</c>).</summary>
    public const int FirstFd = 3;

    /// <summary>Whether the environment carries passed sockets (<c>LISTEN_FDS</c> is set).</summary>
    public static bool IsActivated => Environment.GetEnvironmentVariable("LISTEN_FDS") is not null;

    /// <summary>
    /// Takes the first socket a service manager passed, or returns <see langword="null"/> when
    /// <c>LISTEN_FDS</c> is not set. Either way the variables are removed.
    /// </summary>
    /// <returns>The socket (fd 3, the caller owns it), checked to be a Unix stream socket; <see langword="null"/> without activation.</returns>
    /// <exception cref="InvalidOperationException"><c>LISTEN_PID</c> is missing or names another process, or <c>LISTEN_FDS</c> is not a positive number.</exception>
    /// <exception cref="ArgumentException">fd 3 is not a Unix stream socket.</exception>
    public static SafeFileHandle? TakeFirstSocket()
    {
        string? fds = Environment.GetEnvironmentVariable("LISTEN_FDS");
        string? pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        if (fds is null)
        {
            return null;
        }

        foreach (string name in (ReadOnlySpan<string>)["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"])
        {
            Environment.SetEnvironmentVariable(name, null);
            _ = Interop.unsetenv(name);
        }

        return Take(fds, pid, Environment.ProcessId, FirstFd);
    }

    /// <summary>The checks of <see cref="TakeFirstSocket"/> on given values (tests pass a socket of theirs as <paramref name="firstFd"/>).</summary>
    internal static SafeFileHandle Take(string fds, string? pid, int processId, int firstFd)
    {
        if (pid is null)
        {
            throw new InvalidOperationException($"LISTEN_FDS={fds} is set but LISTEN_PID is not: socket activation needs both (sd_listen_fds)");
        }

        if (!int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out int listenPid) || listenPid <= 0)
        {
            throw new InvalidOperationException($"LISTEN_PID={pid} is not a process id");
        }

        if (listenPid != processId)
        {
            throw new InvalidOperationException($"LISTEN_PID={listenPid} names another process (this one is {processId}): the sockets were passed to that process, and the variables reached this one by inheritance");
        }

        if (!int.TryParse(fds, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count <= 0 || count > int.MaxValue - firstFd)
        {
            throw new InvalidOperationException($"LISTEN_FDS={fds} is not a positive number of passed sockets");
        }

        var first = new SafeFileHandle(firstFd, ownsHandle: true);
        try
        {
            _ = InheritedSocket.IsListening(first, nameof(firstFd));
            for (int fd = firstFd; fd < firstFd + count; fd++)
            {
                using var other = new SafeFileHandle(fd, ownsHandle: false);
                Fd.SetCloseOnExec(other);
            }
        }
        catch
        {
            first.SetHandleAsInvalid();
            throw;
        }

        return first;
    }
}
