namespace Vhost.User.Messages;

/// <summary>The flags of SHMEM_MAP.</summary>
[Flags]
public enum VhostUserShmemMapFlags : ulong
{
    /// <summary>Read-only mapping.</summary>
    None = 0,
    /// <summary>Bit 0 <c>VHOST_USER_FLAG_MAP_RW</c>: map writable.</summary>
    Writable = 0x1,
}
