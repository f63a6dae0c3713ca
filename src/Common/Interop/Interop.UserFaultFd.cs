using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>The <c>userfaultfd</c> system call number on x86_64.</summary>
    internal const long SYS_userfaultfd_x64 = 323;

    /// <summary>The <c>userfaultfd</c> system call number on aarch64 (generic table).</summary>
    internal const long SYS_userfaultfd_arm64 = 282;

    internal const int UFFD_USER_MODE_ONLY = 1;

    /// <summary><c>syscall(2)</c> with one integer argument (glibc has no userfaultfd wrapper).</summary>
    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall(long number, long arg0);
}
