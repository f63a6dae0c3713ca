using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.Tests.User;

/// <summary>
/// What real front-ends send that a strict reading of the spec would refuse, and which a back-end
/// must accept to work with them.
/// </summary>
public sealed class QemuCompatibilityTests
{
    /// <summary>
    /// QEMU 7.2's vhost-user-net never acks VHOST_USER_F_PROTOCOL_FEATURES in SET_FEATURES, yet
    /// sends SET_VRING_ENABLE once protocol features were exchanged (and before SET_FEATURES).
    /// </summary>
    [Fact]
    public void Set_vring_enable_is_accepted_after_set_protocol_features_without_the_virtio_bit_acked()
    {
        using var handler = new RecordingBackendHandler();
        (VhostUserConnection raw, VhostUserConnection b) = VhostUserConnection.CreatePair();
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            raw.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
            dispatcher.HandleNextRequest(2000);
            using (raw.Receive(2000))
            {
            }

            raw.Send((uint)FrontendRequest.SetProtocolFeatures, VhostUserHeaderFlags.None, new VhostUserU64((ulong)VhostUserProtocolFeatures.MQ));
            dispatcher.HandleNextRequest(2000);
            raw.Send((uint)FrontendRequest.SetVringEnable, VhostUserHeaderFlags.None, new VhostUserVringState(1, 1));
            dispatcher.HandleNextRequest(2000);
            Assert.Equal("SetVringEnable 1 True", handler.Last);

            // Features acked later without bit 30 do not undo it.
            raw.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.None, new VhostUserU64((ulong)VirtioFeatures.Version1));
            dispatcher.HandleNextRequest(2000);
            raw.Send((uint)FrontendRequest.SetVringEnable, VhostUserHeaderFlags.None, new VhostUserVringState(0, 0));
            dispatcher.HandleNextRequest(2000);
            Assert.Equal("SetVringEnable 0 False", handler.Last);
        }
    }

    /// <summary>Without any protocol-feature exchange, SET_VRING_ENABLE stays refused.</summary>
    [Fact]
    public void Set_vring_enable_without_any_protocol_feature_exchange_is_refused()
    {
        using var handler = new RecordingBackendHandler();
        (VhostUserConnection raw, VhostUserConnection b) = VhostUserConnection.CreatePair();
        using (raw)
        using (var dispatcher = new VhostUserBackendRequestDispatcher(b, handler))
        {
            raw.Send((uint)FrontendRequest.SetFeatures, VhostUserHeaderFlags.None, new VhostUserU64((ulong)VirtioFeatures.Version1));
            dispatcher.HandleNextRequest(2000);
            raw.Send((uint)FrontendRequest.SetVringEnable, VhostUserHeaderFlags.None, new VhostUserVringState(0, 1));
            var e = Assert.Throws<VhostUserProtocolException>(() => dispatcher.HandleNextRequest(2000));
            Assert.DoesNotContain(handler.Calls, c => c.StartsWith("SetVringEnable", StringComparison.Ordinal));
        }
    }
}
