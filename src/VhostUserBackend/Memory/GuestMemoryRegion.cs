using Microsoft.Win32.SafeHandles;
using Vhost;

namespace VhostUserBackend.Memory;

/// <summary>
/// One region of guest RAM mapped into this process: <c>mmap(PROT_READ|PROT_WRITE,
/// MAP_SHARED|MAP_NORESERVE)</c> of a file the frontend sent (a memfd, a hugetlbfs or a regular
/// file), placed at a guest physical address and known to the frontend under its own user address.
/// </summary>
/// <remarks>
/// <para>The region is reference counted. <see cref="Dispose"/> drops the creator's reference;
/// every <see cref="GuestMemory"/> snapshot that contains the region holds one more, so the
/// mapping is unmapped only when the last snapshot using it is released.
/// <see cref="GuestMemory.Create"/> and <see cref="GuestMemoryAtomic.AddRegion"/> take over the
/// creator's reference.</para>
/// <para>The fd is not kept: the caller may close it once <see cref="Map"/> returns.</para>
/// </remarks>
public sealed unsafe class GuestMemoryRegion : IDisposable
{
    private readonly SafeMmapHandle _mapping;
    private readonly GuestMemoryFaultGuard.Registration _guard;
    private ReferenceCount _references = ReferenceCount.CreateOwned();

    private GuestMemoryRegion(SafeMmapHandle mapping, ulong mmapOffset, ulong size, ulong guestPhysicalAddress, ulong userAddress, ulong fileDevice, ulong fileInode)
    {
        _mapping = mapping;
        _guard = GuestMemoryFaultGuard.Register(mapping.Pointer, mapping.Length);
        FileDevice = fileDevice;
        FileInode = fileInode;
        Host = mapping.Pointer;
        MmapOffset = mmapOffset;
        Size = size;
        GuestPhysicalAddress = guestPhysicalAddress;
        UserAddress = userAddress;
    }

    /// <summary>The guest physical address of the first byte.</summary>
    public ulong GuestPhysicalAddress { get; }

    /// <summary>The size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The address of the first byte in the frontend's (VMM's) address space; vring addresses arrive as those.</summary>
    public ulong UserAddress { get; }

    /// <summary>The offset of the region in the file it was mapped from.</summary>
    public ulong MmapOffset { get; }

    /// <summary>The last guest physical address inside the region (inclusive, so a region may end at 2^64 - 1).</summary>
    public ulong LastGuestPhysicalAddress => GuestPhysicalAddress + (Size - 1);

    /// <summary>The last frontend user address inside the region (inclusive).</summary>
    public ulong LastUserAddress => UserAddress + (Size - 1);

    /// <summary>Whether the mapping is gone (every reference, the creator's included, was released).</summary>
    public bool IsUnmapped => _mapping.IsClosed;

    /// <summary>
    /// Whether the front-end shrank the file under the mapping: an access faulted (SIGBUS) and the
    /// fault guard replaced the mapping with zeros (<see cref="GuestMemoryFaultGuard"/>). What was
    /// read from the region since is garbage and the connection must go.
    /// </summary>
    internal bool IsLost => _guard.IsLost;

    /// <summary>The address of the mapping in this process (valid while a reference is held).</summary>
    internal byte* Host { get; }

    /// <summary>The length of the mapping at <see cref="Host"/>: <see cref="Size"/> rounded up to the file's page size.</summary>
    internal nuint MappedLength => _mapping.Length;

    /// <summary>st_dev of the file the region was mapped from (with <see cref="FileInode"/>: which file it is).</summary>
    internal ulong FileDevice { get; }

    /// <summary>st_ino of the file the region was mapped from.</summary>
    internal ulong FileInode { get; }

    /// <summary>
    /// Maps <paramref name="size"/> bytes of <paramref name="fd"/> starting at
    /// <paramref name="mmapOffset"/>, as the guest physical range starting at
    /// <paramref name="guestPhysicalAddress"/>.
    /// </summary>
    /// <param name="fd">The file backing guest RAM (not taken over; close it when you like).</param>
    /// <param name="mmapOffset">Offset into the file; must be aligned to the file's page size (hugetlbfs: its huge page size).</param>
    /// <param name="size">Size in bytes; <paramref name="mmapOffset"/> + size must not exceed the file size.</param>
    /// <param name="guestPhysicalAddress">Guest physical address of the first byte.</param>
    /// <param name="userAddress">The frontend's user address of the first byte.</param>
    /// <returns>The mapped region.</returns>
    /// <exception cref="ArgumentException">A zero size, an address range that wraps past 2^64, a misaligned offset, or a range past the end of the file.</exception>
    /// <exception cref="VhostException">fstat, fstatfs or mmap failed (errno attached).</exception>
    public static GuestMemoryRegion Map(SafeFileHandle fd, ulong mmapOffset, ulong size, ulong guestPhysicalAddress, ulong userAddress)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ObjectDisposedException.ThrowIf(fd.IsClosed, fd);
        if (size == 0)
        {
            throw new ArgumentException("a guest memory region cannot be empty", nameof(size));
        }

        if (guestPhysicalAddress > ulong.MaxValue - (size - 1))
        {
            throw new ArgumentException($"guest physical range 0x{guestPhysicalAddress:x} + 0x{size:x} wraps past 2^64", nameof(guestPhysicalAddress));
        }

        if (userAddress > ulong.MaxValue - (size - 1))
        {
            throw new ArgumentException($"user address range 0x{userAddress:x} + 0x{size:x} wraps past 2^64", nameof(userAddress));
        }

        if (mmapOffset > long.MaxValue)
        {
            throw new ArgumentException($"mmap offset 0x{mmapOffset:x} is too large", nameof(mmapOffset));
        }

        Interop.FileStatus file = Fd.Stat(fd);
        SafeMmapHandle mapping = SafeMmapHandle.MapShared(fd, (long)mmapOffset, size);
        return new GuestMemoryRegion(mapping, mmapOffset, size, guestPhysicalAddress, userAddress, file.Device, file.Inode);
    }

    /// <summary>
    /// A region dropped without its references released: its mapping's own (critical) finalizer
    /// unmaps it after this runs, so the fault guard never keeps a range that may be reused.
    /// </summary>
    ~GuestMemoryRegion() => _guard.Unregister();

    /// <summary>Drops the creator's reference (idempotent); the mapping goes when no snapshot uses the region any more.</summary>
    public void Dispose()
    {
        if (_references.ReleaseCreator())
        {
            _guard.Unregister();
            GC.SuppressFinalize(this);
            _mapping.Dispose();
        }
    }

    /// <inheritdoc/>
    public override string ToString()
        => $"GuestMemoryRegion [0x{GuestPhysicalAddress:x}, 0x{LastGuestPhysicalAddress:x}] user 0x{UserAddress:x} offset 0x{MmapOffset:x}";

    /// <summary>Takes a reference for a snapshot; false when the region is already unmapped.</summary>
    internal bool TryAddReference() => _references.TryAdd();

    /// <summary>Releases a snapshot's reference.</summary>
    internal void ReleaseReference()
    {
        if (_references.Release())
        {
            _guard.Unregister();
            GC.SuppressFinalize(this);
            _mapping.Dispose();
        }
    }

    /// <summary>Whether the guest physical range overlaps this region's.</summary>
    /// <summary>Whether a region description names exactly this region: same addresses, size and offset, in the same file.</summary>
    internal bool IsSameAs(ulong guestPhysicalAddress, ulong size, ulong userAddress, ulong mmapOffset, in Interop.FileStatus file)
        => GuestPhysicalAddress == guestPhysicalAddress && Size == size && UserAddress == userAddress && MmapOffset == mmapOffset
           && FileDevice == file.Device && FileInode == file.Inode;

    internal bool OverlapsGuestPhysical(GuestMemoryRegion other)
        => GuestPhysicalAddress <= other.LastGuestPhysicalAddress && other.GuestPhysicalAddress <= LastGuestPhysicalAddress;

    /// <summary>Whether the user address range overlaps this region's.</summary>
    internal bool OverlapsUser(GuestMemoryRegion other)
        => UserAddress <= other.LastUserAddress && other.UserAddress <= LastUserAddress;
}
