namespace Vhost.Tests;

/// <summary>Counts the process's open fds, for leak checks in the "FdCount" collection.</summary>
internal static class OpenFds
{
    /// <summary>The number of entries in <c>/proc/self/fd</c>.</summary>
    public static int Count() => Directory.GetFiles("/proc/self/fd").Length;
}
