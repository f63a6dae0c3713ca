using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.Tests.User;

/// <summary>The negotiated features are stored once per side and agree after RESET_DEVICE.</summary>
public sealed class NegotiationTests
{
    [Fact]
    public void Reset_device_forgets_the_virtio_features_on_both_sides_and_keeps_the_protocol_features()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate(VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ResetDevice);
        var update = new VhostUserIotlbMessage { Type = VhostIotlbType.Update, Iova = 0x1000, Size = 0x1000, UserAddress = 0x7000, Permission = VhostIotlbAccess.ReadWrite };
        pair.Frontend.SendIotlbMessage(update);
        Assert.Equal(RecordingBackendHandler.OfferedFeatures, pair.Dispatcher.AckedFeatures);

        pair.Frontend.ResetDevice();

        Assert.Equal(0ul, pair.Frontend.AckedFeatures);
        Assert.Equal(0ul, pair.Dispatcher.AckedFeatures);
        Assert.Equal(pair.Frontend.AckedProtocolFeatures, pair.Dispatcher.AckedProtocolFeatures);
        Assert.Throws<InvalidOperationException>(() => pair.Frontend.SendIotlbMessage(update));

        pair.Frontend.SetFeatures((ulong)VirtioFeatures.AccessPlatform | (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
        pair.Frontend.SendIotlbMessage(update);
        Assert.Equal("IotlbMessage Update 1000 1000 7000 ReadWrite", pair.Handler.Last);
    }

    [Fact]
    public void Set_features_with_bits_not_offered_is_refused_and_changes_nothing()
    {
        using var pair = new ProtocolPair();
        pair.Negotiate(VhostUserProtocolFeatures.ReplyAck);
        int setFeatures = pair.Handler.Calls.Count(c => c.StartsWith("SetFeatures", StringComparison.Ordinal));

        var e = Assert.Throws<VhostUserPeerRefusedException>(() => pair.Frontend.SetFeatures(RecordingBackendHandler.OfferedFeatures | (1ul << 50)));

        Assert.Equal(RecordingBackendHandler.OfferedFeatures, pair.Dispatcher.AckedFeatures);
        Assert.Equal(setFeatures, pair.Handler.Calls.Count(c => c.StartsWith("SetFeatures", StringComparison.Ordinal)));
        Assert.Contains("SetFeatures", e.Message, StringComparison.Ordinal);
    }
}
