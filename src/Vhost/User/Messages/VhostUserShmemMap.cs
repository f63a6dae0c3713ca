using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The SHMEM_MAP / SHMEM_UNMAP payload (40 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct VhostUserShmemMap
{
    /// <summary>The VIRTIO shared memory region id.</summary>
    [FieldOffset(0)]
    public byte ShmemId;

    /// <summary>The offset in the attached fd (SHMEM_MAP).</summary>
    [FieldOffset(8)]
    public ulong FdOffset;

    /// <summary>The offset in the shared memory region.</summary>
    [FieldOffset(16)]
    public ulong ShmemOffset;

    /// <summary>The length to map or unmap.</summary>
    [FieldOffset(24)]
    public ulong Length;

    /// <summary>Mapping flags.</summary>
    [FieldOffset(32)]
    public VhostUserShmemMapFlags Flags;

    /// <summary>Syntax check: non-zero length, no wrap, only known flags.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
        => Length != 0
           && FdOffset <= ulong.MaxValue - Length
           && ShmemOffset <= ulong.MaxValue - Length
           && (Flags & ~VhostUserShmemMapFlags.Writable) == 0;
}
