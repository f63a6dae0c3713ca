using System.Runtime.InteropServices;

/// <summary>
/// A memory mapping made with <c>mmap(2)</c>, released with <c>munmap(2)</c> of the stored
/// length. Never maps past the end of the backing file: <see cref="MapShared"/> checks
/// <c>fstat</c> first, since touching a page beyond EOF would raise SIGBUS.
/// </summary>
internal sealed unsafe class SafeMmapHandle : SafeHandle
{
    private SafeMmapHandle(nint address, nuint length)
        : base(Interop.MAP_FAILED, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    /// <summary>The mapped length in bytes.</summary>
    public nuint Length { get; }

    /// <summary>The base address (valid while the handle is not released).</summary>
    public byte* Pointer => (byte*)handle;

    /// <inheritdoc/>
    public override bool IsInvalid => handle == Interop.MAP_FAILED || handle == 0;

    /// <summary>
    /// Maps <paramref name="length"/> bytes of <paramref name="fd"/> at <paramref name="offset"/>
    /// with <c>PROT_READ|PROT_WRITE</c> (or read-only) and <c>MAP_SHARED|MAP_NORESERVE</c>.
    /// The offset must be aligned to the file's page size (hugetlbfs: its huge page size) and
    /// <c>offset + length</c> must not exceed the file size.
    /// </summary>
    /// <exception cref="ArgumentException">A zero length, an overflow, a misaligned offset or a range past the end of the file.</exception>
    /// <exception cref="Exception">fstat, fstatfs or mmap failed. (the assembly's errno exception, <c>VhostException</c>).</exception>
    internal static SafeMmapHandle MapShared(SafeHandle fd, long offset, ulong length, bool writable = true)
    {
        long pageSize = CheckMappable(fd, offset, length);
        int prot = Interop.PROT_READ | (writable ? Interop.PROT_WRITE : 0);
        using var scope = new Fd.HandleScope(fd);
        nint address = Interop.mmap(0, (nuint)length, prot, Interop.MAP_SHARED | Interop.MAP_NORESERVE, scope.Fd, offset);
        if (address == Interop.MAP_FAILED)
        {
            ErrnoChecks.ThrowLast("mmap", $"offset 0x{offset:x}, length 0x{length:x}");
        }

        return new SafeMmapHandle(address, RoundUp((nuint)length, (nuint)pageSize));
    }

    /// <summary>
    /// The checks of a shared file mapping before <c>mmap(2)</c>: a non-zero length, no overflow, a
    /// mappable file (not a socket, pipe or directory), a range within a regular file, an offset
    /// aligned to the file's page size.
    /// </summary>
    /// <returns>The file's page size.</returns>
    /// <exception cref="ArgumentException">The mapping would fail or fault.</exception>
    internal static long CheckMappable(SafeHandle fd, long offset, ulong length)
    {
        if (length == 0)
        {
            throw new ArgumentException("cannot map 0 bytes", nameof(length));
        }

        if (offset < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "mmap offset is negative");
        }

        if (length > long.MaxValue || (ulong)offset > long.MaxValue - length)
        {
            throw new ArgumentException($"mapping offset 0x{offset:x} + length 0x{length:x} overflows", nameof(length));
        }

        Interop.FileStatus st = Fd.Stat(fd);
        uint type = st.FileType;
        if (type is Interop.S_IFSOCK or Interop.S_IFIFO or Interop.S_IFDIR)
        {
            throw new ArgumentException("the descriptor is not a mappable file (it is a socket, pipe or directory)", nameof(fd));
        }

        if (type == Interop.S_IFREG && (ulong)offset + length > (ulong)st.Size)
        {
            throw new ArgumentException($"mapping [0x{offset:x}, 0x{(ulong)offset + length:x}) extends past the end of the file (size 0x{st.Size:x}); it would fault with SIGBUS", nameof(length));
        }

        long pageSize = PageSizeOf(fd);
        if (offset % pageSize != 0)
        {
            throw new ArgumentException($"mmap offset 0x{offset:x} is not aligned to the file's page size 0x{pageSize:x}", nameof(offset));
        }

        return pageSize;
    }

    /// <summary>Anonymous private read-write memory (tests and scratch buffers).</summary>
    internal static SafeMmapHandle MapAnonymous(ulong length)
    {
        if (length == 0)
        {
            throw new ArgumentException("cannot map 0 bytes", nameof(length));
        }

        nint address = Interop.mmap(0, (nuint)length, Interop.PROT_READ | Interop.PROT_WRITE, Interop.MAP_PRIVATE | Interop.MAP_ANONYMOUS, -1, 0);
        if (address == Interop.MAP_FAILED)
        {
            ErrnoChecks.ThrowLast("mmap", $"anonymous, length 0x{length:x}");
        }

        return new SafeMmapHandle(address, (nuint)length);
    }

    /// <summary>An inaccessible reservation of address space (PROT_NONE, nothing committed): the frame for <see cref="MapFixedShared"/>.</summary>
    internal static SafeMmapHandle Reserve(ulong length)
    {
        if (length == 0)
        {
            throw new ArgumentException("cannot reserve 0 bytes", nameof(length));
        }

        nint address = Interop.mmap(0, (nuint)length, Interop.PROT_NONE, Interop.MAP_PRIVATE | Interop.MAP_ANONYMOUS | Interop.MAP_NORESERVE, -1, 0);
        if (address == Interop.MAP_FAILED)
        {
            ErrnoChecks.ThrowLast("mmap", $"reservation, length 0x{length:x}");
        }

        return new SafeMmapHandle(address, (nuint)length);
    }

    /// <summary>
    /// Maps <paramref name="fd"/> over <paramref name="length"/> bytes at <paramref name="offset"/>
    /// of this reservation (MAP_FIXED: the pages there are replaced atomically). The caller checked
    /// the range (within the reservation, page aligned) and the file (<see cref="CheckMappable"/>).
    /// </summary>
    internal void MapFixedShared(ulong offset, ulong length, SafeHandle fd, long fileOffset, bool writable)
    {
        int prot = Interop.PROT_READ | (writable ? Interop.PROT_WRITE : 0);
        using var scope = new Fd.HandleScope(fd);
        FixedMap(offset, length, prot, Interop.MAP_SHARED | Interop.MAP_FIXED, scope.Fd, fileOffset);
    }

    /// <summary>Puts the reservation back over <paramref name="length"/> bytes at <paramref name="offset"/> (the file mapping there goes away).</summary>
    internal void UnmapFixed(ulong offset, ulong length)
        => FixedMap(offset, length, Interop.PROT_NONE, Interop.MAP_PRIVATE | Interop.MAP_ANONYMOUS | Interop.MAP_NORESERVE | Interop.MAP_FIXED, -1, 0);

    private void FixedMap(ulong offset, ulong length, int prot, int flags, int fd, long fileOffset)
    {
        if (length == 0 || offset > (ulong)Length || length > (ulong)Length - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"[0x{offset:x}, +0x{length:x}) is outside the 0x{Length:x}-byte reservation");
        }

        bool added = false;
        try
        {
            DangerousAddRef(ref added);
            nint at = handle + (nint)offset;
            if (Interop.mmap(at, (nuint)length, prot, flags, fd, fileOffset) == Interop.MAP_FAILED)
            {
                ErrnoChecks.ThrowLast("mmap", $"fixed at +0x{offset:x}, length 0x{length:x}");
            }
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }
    }

    /// <summary>The page size of the file behind <paramref name="fd"/>: the huge page size on hugetlbfs, otherwise the system page size.</summary>
    internal static long PageSizeOf(SafeHandle fd)
    {
        Interop.statfs fs = Fd.StatFs(fd);
        return fs.f_type == Interop.HUGETLBFS_MAGIC ? fs.f_bsize : Interop.getpagesize();
    }

    /// <summary><c>madvise(2)</c> over the whole mapping.</summary>
    internal void Advise(int advice)
    {
        bool added = false;
        try
        {
            DangerousAddRef(ref added);
            ErrnoChecks.Check(Interop.madvise(handle, Length, advice), "madvise");
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }
    }

    /// <inheritdoc/>
    /// <summary>
    /// Maps <paramref name="length"/> bytes at <paramref name="offset"/> of a kernel object's fd
    /// (an io_uring ring) read-write, shared and populated. There is no file size to check: the
    /// kernel refuses a length or offset the object does not have.
    /// </summary>
    /// <exception cref="Exception">mmap failed. (the assembly's errno exception, <c>VhostException</c>).</exception>
    internal static SafeMmapHandle MapKernelObject(SafeHandle fd, long offset, ulong length, string what)
    {
        using var scope = new Fd.HandleScope(fd);
        nint address = Interop.mmap(0, (nuint)length, Interop.PROT_READ | Interop.PROT_WRITE, Interop.MAP_SHARED | Interop.MAP_POPULATE, scope.Fd, offset);
        if (address == Interop.MAP_FAILED)
        {
            ErrnoChecks.ThrowLast("mmap", $"{what}, {length} bytes");
        }

        return new SafeMmapHandle(address, (nuint)length);
    }

    protected override bool ReleaseHandle() => Interop.munmap(handle, Length) == 0;

    private static nuint RoundUp(nuint value, nuint alignment) => (value + alignment - 1) & ~(alignment - 1);
}
