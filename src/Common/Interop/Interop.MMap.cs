using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    internal const int PROT_NONE = 0x0;
    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;

    internal const int MAP_SHARED = 0x01;
    internal const int MAP_PRIVATE = 0x02;
    internal const int MAP_FIXED = 0x10;
    internal const int MAP_ANONYMOUS = 0x20;
    internal const int MAP_NORESERVE = 0x4000;
    internal const int MAP_POPULATE = 0x8000;

    internal const int MADV_DONTNEED = 4;
    internal const int MADV_REMOVE = 9;
    internal const int MADV_DONTFORK = 10;

    /// <summary>The value <c>mmap</c> returns on failure.</summary>
    internal static readonly nint MAP_FAILED = -1;

    [LibraryImport(Libc, EntryPoint = "mmap64", SetLastError = true)]
    internal static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int munmap(nint addr, nuint length);

    [LibraryImport(Libc, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int madvise(nint addr, nuint length, int advice);

    [LibraryImport(Libc, EntryPoint = "getpagesize")]
    internal static partial int getpagesize();
}
