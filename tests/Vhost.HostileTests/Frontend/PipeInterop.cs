using System.Runtime.InteropServices;

namespace Vhost.HostileTests.Frontend;

/// <summary><c>pipe2(2)</c>, to hand the daemon an fd of the wrong kind.</summary>
internal static partial class PipeInterop
{
    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    internal static partial int pipe2([Out] int[] fds, int flags);
}
