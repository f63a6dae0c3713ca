namespace Vhost.Tests;

/// <summary>Counts the process's open fds, for leak checks in the "FdCount" collection.</summary>
internal static class OpenFds
{
    /// <summary>
    /// The number of entries in <c>/proc/self/fd</c>, after running pending finalizers so a handle
    /// another test dropped without disposing cannot close in the middle of a measurement, not
    /// counting mapped assemblies and native libraries (the runtime opens those lazily on first
    /// use of a type, which is not a leak).
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
