using System.Globalization;

namespace Vhost.HostileTests.Targets;

/// <summary>Reads a process's fd count, mapping count and RSS from /proc.</summary>
internal static class ProcFs
{
    /// <summary>
    /// The fds a process holds, not counting mapped assemblies and native libraries: a .NET daemon
    /// opens those lazily the first time a code path needs them (the first header-abuse scenario
    /// loaded a dozen), which is not a leak.
    /// </summary>
    public static int CountFds(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Count(f => !IsCodeFile(f));

    private static bool IsCodeFile(string fd)
    {
        try
        {
            string? target = new FileInfo(fd).LinkTarget;
            return target is not null && ((target.EndsWith(".dll", StringComparison.Ordinal) || target.EndsWith(".pdb", StringComparison.Ordinal) || target.Contains(".so", StringComparison.Ordinal)));
        }
        catch (IOException)
        {
            return false;
        }
    }

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
