namespace Vhost.Tests;

/// <summary>Counts the process's open fds, for leak checks in the "FdCount" collection.</summary>
internal static class OpenFds
{
    /// <summary>
    /// The number of entries in <c>/proc/self/fd</c>, after running pending finalizers so a handle
    /// another test dropped without disposing cannot close in the middle of a measurement.
    /// </summary>
    public static int Count()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Directory.GetFiles("/proc/self/fd").Length;
    }
}
