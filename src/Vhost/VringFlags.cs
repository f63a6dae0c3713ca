namespace Vhost;

/// <summary>Ring flags for <see cref="VringConfigData"/> (<c>VHOST_VRING_F_*</c>).</summary>
[Flags]
public enum VringFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary><c>VHOST_VRING_F_LOG</c>: log used-ring writes to <see cref="VringConfigData.LogAddress"/>.</summary>
    Log = 0x1,
}
