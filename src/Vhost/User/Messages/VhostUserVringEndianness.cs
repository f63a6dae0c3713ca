namespace Vhost.User.Messages;

/// <summary>The ring endianness of SET_VRING_ENDIAN (<c>VHOST_VRING_*_ENDIAN</c>).</summary>
public enum VhostUserVringEndianness : uint
{
    /// <summary><c>VHOST_VRING_LITTLE_ENDIAN</c>.</summary>
    Little = 0,
    /// <summary><c>VHOST_VRING_BIG_ENDIAN</c>.</summary>
    Big = 1,
}
