namespace Vhost.User.Messages;

/// <summary>The flags of GET/SET_CONFIG (<c>VHOST_SET_CONFIG_TYPE_*</c>).</summary>
[Flags]
public enum VhostUserConfigFlags : uint
{
    /// <summary>No flag: a front-end write (<c>VHOST_SET_CONFIG_TYPE_FRONTEND</c> = 0).</summary>
    None = 0,
    /// <summary>Bit 0: the config space is writable.</summary>
    Writable = 0x1,
    /// <summary>Bit 1 <c>VHOST_SET_CONFIG_TYPE_MIGRATION</c>: written during live migration.</summary>
    LiveMigration = 0x2,
}
