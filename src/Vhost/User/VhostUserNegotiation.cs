using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// What one back-end connection negotiated: the virtio features the front-end acked
/// (SET_FEATURES) and the protocol features (SET_PROTOCOL_FEATURES). The one store of both: the
/// dispatcher writes it and reads its gates from it; the back-end channel and the daemon's
/// handler read it.
/// </summary>
/// <remarks>
/// <para>RESET_DEVICE forgets the virtio features (the driver negotiates them again, and QEMU
/// sends SET_FEATURES before it restarts the rings); the protocol features belong to the
/// connection and stay, as in DPDK and libvhost-user.</para>
/// <para>Written on the connection's control thread only. Workers may read it (a back-end channel
/// gate); each value is a single aligned word.</para>
/// </remarks>
internal sealed class VhostUserNegotiation
{
    private ulong _features;
    private ulong _protocolFeatures;

    /// <summary>The acked virtio features (0 before SET_FEATURES and after RESET_DEVICE).</summary>
    public ulong Features => Volatile.Read(ref _features);

    /// <summary>Whether SET_FEATURES was received since the connection began or the last RESET_DEVICE.</summary>
    public bool FeaturesSet { get; private set; }

    /// <summary>The acked protocol features.</summary>
    public VhostUserProtocolFeatures ProtocolFeatures => (VhostUserProtocolFeatures)Volatile.Read(ref _protocolFeatures);

    /// <summary>Whether SET_PROTOCOL_FEATURES was received on this connection.</summary>
    public bool ProtocolFeaturesSet { get; private set; }

    /// <summary>Whether VHOST_USER_F_PROTOCOL_FEATURES is among the acked virtio features.</summary>
    public bool ProtocolFeaturesAcked => HasFeatures((ulong)VhostUserVirtioFeatures.ProtocolFeatures);

    /// <summary>Whether every bit of <paramref name="features"/> was acked.</summary>
    /// <param name="features">Virtio feature bits.</param>
    /// <returns><see langword="true"/> when all were acked.</returns>
    public bool HasFeatures(ulong features) => (Features & features) == features;

    /// <summary>Whether every flag of <paramref name="features"/> was acked.</summary>
    /// <param name="features">Protocol feature flags.</param>
    /// <returns><see langword="true"/> when all were acked.</returns>
    public bool HasProtocolFeatures(VhostUserProtocolFeatures features) => (ProtocolFeatures & features) == features;

    /// <summary>SET_FEATURES.</summary>
    /// <param name="features">The acked virtio features.</param>
    public void AckFeatures(ulong features)
    {
        Volatile.Write(ref _features, features);
        FeaturesSet = true;
    }

    /// <summary>SET_PROTOCOL_FEATURES.</summary>
    /// <param name="features">The acked protocol features.</param>
    public void AckProtocolFeatures(VhostUserProtocolFeatures features)
    {
        Volatile.Write(ref _protocolFeatures, (ulong)features);
        ProtocolFeaturesSet = true;
    }

    /// <summary>RESET_DEVICE: the virtio features are forgotten; the protocol features stay.</summary>
    public void ResetDevice()
    {
        Volatile.Write(ref _features, 0);
        FeaturesSet = false;
    }
}
