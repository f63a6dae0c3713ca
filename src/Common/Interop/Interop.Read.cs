using System.Runtime.InteropServices;

internal static unsafe partial class Interop
{
    /// <summary>An <c>iovec</c> (16 bytes on 64-bit).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct iovec
    {
        public void* iov_base;
        public nuint iov_len;
    }

    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    internal static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    internal static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport(Libc, EntryPoint = "pread64", SetLastError = true)]
    internal static partial nint pread(int fd, void* buf, nuint count, long offset);

    [LibraryImport(Libc, EntryPoint = "pwrite64", SetLastError = true)]
    internal static partial nint pwrite(int fd, void* buf, nuint count, long offset);

    [LibraryImport(Libc, EntryPoint = "readv", SetLastError = true)]
    internal static partial nint readv(int fd, iovec* iov, int iovcnt);

    [LibraryImport(Libc, EntryPoint = "writev", SetLastError = true)]
    internal static partial nint writev(int fd, iovec* iov, int iovcnt);

    [LibraryImport(Libc, EntryPoint = "preadv64", SetLastError = true)]
    internal static partial nint preadv(int fd, iovec* iov, int iovcnt, long offset);

    [LibraryImport(Libc, EntryPoint = "pwritev64", SetLastError = true)]
    internal static partial nint pwritev(int fd, iovec* iov, int iovcnt, long offset);
}
