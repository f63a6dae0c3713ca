using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary><c>SIGCONT</c> (the same number on x86_64 and aarch64).</summary>
    internal const int SIGCONT = 18;

    /// <summary><c>SIGWINCH</c> (the same number on x86_64 and aarch64).</summary>
    internal const int SIGWINCH = 28;

    /// <summary><c>gettid(2)</c>: the kernel id of the calling thread. Never fails.</summary>
    [LibraryImport(Libc, EntryPoint = "gettid")]
    internal static partial int gettid();

    /// <summary>
    /// <c>tgkill(2)</c>: sends <paramref name="sig"/> to one thread of a thread group, for example
    /// to interrupt a worker blocked in a system call.
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "tgkill", SetLastError = true)]
    internal static partial int tgkill(int tgid, int tid, int sig);
}
