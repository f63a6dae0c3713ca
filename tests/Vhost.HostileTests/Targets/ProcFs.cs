using System.Globalization;

namespace Vhost.HostileTests.Targets;

/// <summary>Reads a process's fd count, mapping count and RSS from /proc.</summary>
internal static class ProcFs
{
    /// <summary>The fds a process holds, not counting code files it opened lazily (see <see cref="OpenFds"/>).</summary>
    public static int CountFds(int pid) => OpenFds.CountOf(pid.ToString(CultureInfo.InvariantCulture));

    public static int CountMappings(int pid) => File.ReadLines($"/proc/{pid}/maps").Count();

    public static long ResidentKiB(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    /// <summary>Polls <paramref name="read"/> until it returns <paramref name="expected"/> (or less) or the limit passes; returns the last value.</summary>
    public static int Settle(Func<int> read, int expected, TimeSpan limit)
    {
        long deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        int value = read();
        while (value > expected && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(5);
            value = read();
        }

        return value;
    }
}
