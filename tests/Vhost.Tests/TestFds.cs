using Microsoft.Win32.SafeHandles;

namespace Vhost.Tests;

/// <summary>Helpers for fd accounting and fd identity in tests.</summary>
internal static class TestFds
{
    /// <summary>The number of open fds of this process (see <see cref="OpenFds.Count"/>).</summary>
    public static int Count() => OpenFds.Count();

    /// <summary>Describes every open fd (for diagnosing leaks).</summary>
    public static string Describe() => string.Join("\n", Directory.GetFiles("/proc/self/fd").Select(f => { try { return f + " -> " + new FileInfo(f).LinkTarget; } catch { return f; } }));

    /// <summary>A memfd: every memfd has its own inode, so identity can be compared with fstat.</summary>
    public static SafeFileHandle MemFd(long size = 4096, string name = "vhost-test") => Fd.CreateMemFd(name, size);

    /// <summary>The (device, inode) identity of an fd.</summary>
    public static (ulong Device, ulong Inode) Identity(System.Runtime.InteropServices.SafeHandle fd)
    {
        global::Interop.FileStatus st = Fd.Stat(fd);
        return (st.Device, st.Inode);
    }

    /// <summary>A unique short socket path.</summary>
    public static string SocketPath() => Path.Combine(Path.GetTempPath(), $"vhu-{Guid.NewGuid():N}.sock");
}
