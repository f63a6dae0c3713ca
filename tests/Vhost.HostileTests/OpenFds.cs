namespace Vhost.HostileTests;

/// <summary>Counts the process's open fds for leak checks.</summary>
internal static class OpenFds
{
    /// <summary>
    /// The entries of <c>/proc/self/fd</c> after pending finalizers ran, not counting mapped
    /// assemblies and native libraries: the runtime opens those lazily the first time a code path
    /// needs them (the first stray-fd scenario loaded two and looked like a leak of two fds).
    /// </summary>
    public static int Count()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Directory.GetFiles("/proc/self/fd").Count(f => !IsCodeFile(f));
    }

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
}
