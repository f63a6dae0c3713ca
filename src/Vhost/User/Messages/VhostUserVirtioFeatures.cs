namespace Vhost.User.Messages;

/// <summary>
/// The bits vhost claims in the virtio feature word (GET/SET_FEATURES), the rust-vmm
/// <c>VhostUserVirtioFeatures</c>: the generic virtio bits are <see cref="Vhost.Virtio.VirtioFeatures"/>.
/// </summary>
[Flags]
public enum VhostUserVirtioFeatures : ulong
{
    /// <summary>No bit.</summary>
    None = 0,
    /// <summary>Bit 26 <c>VHOST_F_LOG_ALL</c>: log every write to guest memory (migration).</summary>
    LogAll = 1UL << 26,
    /// <summary>Bit 30 <c>VHOST_USER_F_PROTOCOL_FEATURES</c>: protocol-feature negotiation and ring enable/disable.</summary>
    ProtocolFeatures = 1UL << 30,
}
