namespace Vhost;

/// <summary>The byte order of a legacy (pre-VERSION_1) vring (<c>VHOST_VRING_LITTLE_ENDIAN</c> / <c>VHOST_VRING_BIG_ENDIAN</c>).</summary>
public enum VringEndianness
{
    /// <summary><c>VHOST_VRING_LITTLE_ENDIAN</c>.</summary>
    Little = 0,

    /// <summary><c>VHOST_VRING_BIG_ENDIAN</c>.</summary>
    Big = 1,
}
