namespace Vhost.TestSupport;

/// <summary>
/// Counts open fds for leak checks, in this process or another, leaving out mapped assemblies,
/// symbol files and native libraries: a .NET process opens those lazily the first time a code
/// path needs them (the first exception logged with a stack trace opens the .pdb files), which is
/// not a leak. Linked into every test project that counts fds.
/// </summary>
internal static class OpenFds
{
    /// <summary>This process's open fds, after pending finalizers ran (so a handle another test dropped cannot close mid-measurement).</summary>
    public static int Count()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return CountOf("self");
    }

    /// <summary>The open fds of process <paramref name="pid"/> (<c>self</c> for this one).</summary>
    public static int CountOf(string pid) => Directory.GetFiles($"/proc/{pid}/fd").Count(f => !IsCodeFile(f));

    /// <summary>Whether the fd link points at a .dll, .pdb or shared library.</summary>
    public static bool IsCodeFile(string fdLink)
    {
        try
        {
            string? target = new FileInfo(fdLink).LinkTarget;
            return target is not null && (target.EndsWith(".dll", StringComparison.Ordinal) || target.EndsWith(".pdb", StringComparison.Ordinal) || target.Contains(".so", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }
}
