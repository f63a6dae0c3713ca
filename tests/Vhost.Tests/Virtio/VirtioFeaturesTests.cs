using System.Numerics;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.Tests.Virtio;

/// <summary><see cref="VirtioFeatures"/>: every generic bit of VIRTIO 1.3 §6 at its number, and agreement with the vhost-user enum's copies.</summary>
public sealed class VirtioFeaturesTests
{
    public static TheoryData<VirtioFeatures, int> Bits => new()
    {
        { VirtioFeatures.NotifyOnEmpty, 24 },
        { VirtioFeatures.AnyLayout, 27 },
        { VirtioFeatures.RingIndirectDescriptors, 28 },
        { VirtioFeatures.RingEventIndex, 29 },
        { VirtioFeatures.Version1, 32 },
        { VirtioFeatures.AccessPlatform, 33 },
        { VirtioFeatures.RingPacked, 34 },
        { VirtioFeatures.InOrder, 35 },
        { VirtioFeatures.OrderPlatform, 36 },
        { VirtioFeatures.SrIov, 37 },
        { VirtioFeatures.NotificationData, 38 },
        { VirtioFeatures.NotificationConfigData, 39 },
        { VirtioFeatures.RingReset, 40 },
        { VirtioFeatures.AdminVirtqueue, 41 },
    };

    [Theory]
    [MemberData(nameof(Bits))]
    public void Bit_is_the_spec_number(VirtioFeatures feature, int bit) => Assert.Equal(1UL << bit, (ulong)feature);

    [Fact]
    public void Every_member_is_one_bit_and_has_a_row()
    {
        var rows = Bits.Select(r => (VirtioFeatures)r.Data.Item1).ToHashSet();
        foreach (VirtioFeatures f in Enum.GetValues<VirtioFeatures>().Where(f => f != VirtioFeatures.None))
        {
            Assert.Equal(1, BitOperations.PopCount((ulong)f));
            Assert.Contains(f, rows);
        }
    }

    [Fact]
    public void No_vhost_bit_is_a_virtio_bit()
    {
        // Bits 26 and 30 belong to vhost (LOG_ALL, PROTOCOL_FEATURES), not to the virtio enum.
        ulong all = Enum.GetValues<VirtioFeatures>().Aggregate(0UL, (a, f) => a | (ulong)f);
        Assert.Equal(0UL, all & (ulong)(VhostUserVirtioFeatures.LogAll | VhostUserVirtioFeatures.ProtocolFeatures));
    }

    [Fact]
    public void The_vhost_enum_holds_only_the_vhost_bits()
    {
        // One place per bit: the generic bits are VirtioFeatures' alone.
        ulong vhost = Enum.GetValues<VhostUserVirtioFeatures>().Aggregate(0UL, (a, f) => a | (ulong)f);
        Assert.Equal((1UL << 26) | (1UL << 30), vhost);
    }
}
