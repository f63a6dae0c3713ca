namespace Vhost.User.Messages;

/// <summary>The flags of SET_VRING_ADDR (<c>VHOST_VRING_F_*</c>).</summary>
[Flags]
internal enum VhostUserVringAddressFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary><c>VHOST_VRING_F_LOG</c>: log used-ring writes at <see cref="VhostUserVringAddress.LogAddress"/>.</summary>
    Log = 0x1,
}
