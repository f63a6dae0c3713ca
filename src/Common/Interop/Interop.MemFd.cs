using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal const uint MFD_CLOEXEC = 0x1;
    internal const uint MFD_ALLOW_SEALING = 0x2;
    internal const uint MFD_HUGETLB = 0x4;
    internal const uint MFD_NOEXEC_SEAL = 0x8;

    internal const int FALLOC_FL_KEEP_SIZE = 0x01;
    internal const int FALLOC_FL_PUNCH_HOLE = 0x02;
    internal const int FALLOC_FL_ZERO_RANGE = 0x10;

    [LibraryImport(Libc, EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int memfd_create(string name, uint flags);

    [LibraryImport(Libc, EntryPoint = "ftruncate64", SetLastError = true)]
    internal static partial int ftruncate(int fd, long length);

    [LibraryImport(Libc, EntryPoint = "fallocate64", SetLastError = true)]
    internal static partial int fallocate(int fd, int mode, long offset, long len);
}
