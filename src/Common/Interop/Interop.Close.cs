using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary><c>close(2)</c>. Never retried on EINTR: Linux has released the fd either way.</summary>
    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary><c>dup(2)</c>.</summary>
    [LibraryImport(Libc, EntryPoint = "dup", SetLastError = true)]
    internal static partial int dup(int fd);

    /// <summary><c>fcntl(F_DUPFD_CLOEXEC)</c> is the close-on-exec dup; see <see cref="Fd.Duplicate"/>.</summary>
    internal const int F_DUPFD_CLOEXEC = 1030;
}
