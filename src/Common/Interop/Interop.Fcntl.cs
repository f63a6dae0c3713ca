using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int F_ADD_SEALS = 1033;
    internal const int F_GET_SEALS = 1034;

    internal const int FD_CLOEXEC = 1;
    internal const int O_NONBLOCK = 0x800;

    /// <summary><c>O_DIRECT</c> on x86_64 (settable with F_SETFL).</summary>
    internal const int O_DIRECT_x64 = 0x4000;

    /// <summary><c>O_DIRECT</c> on aarch64 (settable with F_SETFL).</summary>
    internal const int O_DIRECT_arm64 = 0x10000;

    internal const int F_SEAL_SEAL = 0x1;
    internal const int F_SEAL_SHRINK = 0x2;
    internal const int F_SEAL_GROW = 0x4;
    internal const int F_SEAL_WRITE = 0x8;
    internal const int F_SEAL_FUTURE_WRITE = 0x10;

    /// <summary><c>fcntl(fd, cmd, int arg)</c>; every command this library uses takes an int or nothing.</summary>
    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);
}
