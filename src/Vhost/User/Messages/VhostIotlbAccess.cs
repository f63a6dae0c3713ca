namespace Vhost.User.Messages;

/// <summary>The permission of an IOTLB entry (<c>VHOST_ACCESS_*</c>).</summary>
public enum VhostIotlbAccess : byte
{
    /// <summary>No access.</summary>
    None = 0,
    /// <summary><c>VHOST_ACCESS_RO</c>.</summary>
    ReadOnly = 1,
    /// <summary><c>VHOST_ACCESS_WO</c>.</summary>
    WriteOnly = 2,
    /// <summary><c>VHOST_ACCESS_RW</c>.</summary>
    ReadWrite = 3,
}
