using System.Buffers.Binary;
using System.Net.NetworkInformation;

namespace VhostUserNet;

/// <summary>
/// The fields of <c>struct virtio_net_config</c> (virtio 1.2 section 5.1.4) the sample fills:
/// <c>mac</c>, <c>status</c>, <c>max_virtqueue_pairs</c>, <c>mtu</c>. Reads past them return zeros
/// (speed, duplex and the RSS fields belong to features the sample does not offer).
/// </summary>
internal static class VirtioNetConfig
{
    /// <summary>Offset of <c>u8 mac[6]</c>.</summary>
    public const int MacOffset = 0;

    /// <summary>Offset of <c>le16 status</c>.</summary>
    public const int StatusOffset = 6;

    /// <summary>Offset of <c>le16 max_virtqueue_pairs</c>.</summary>
    public const int MaxVirtqueuePairsOffset = 8;

    /// <summary>Offset of <c>le16 mtu</c>.</summary>
    public const int MtuOffset = 10;

    /// <summary>Bytes of the fields filled here.</summary>
    public const int Size = 12;

    /// <summary>VIRTIO_NET_S_LINK_UP.</summary>
    public const ushort StatusLinkUp = 1;

    /// <summary>Config space larger than this is refused (the vhost-user GET_CONFIG payload limit).</summary>
    public const int MaxConfigSize = 256;

    /// <summary>Builds the config bytes.</summary>
    /// <param name="mac">The MAC the device suggests to the driver.</param>
    /// <param name="queuePairs">max_virtqueue_pairs.</param>
    /// <param name="mtu">The MTU.</param>
    /// <returns><see cref="Size"/> bytes.</returns>
    public static byte[] Build(PhysicalAddress mac, int queuePairs, int mtu)
    {
        var config = new byte[Size];
        mac.GetAddressBytes().CopyTo(config.AsSpan(MacOffset, 6));
        BinaryPrimitives.WriteUInt16LittleEndian(config.AsSpan(StatusOffset), StatusLinkUp);
        BinaryPrimitives.WriteUInt16LittleEndian(config.AsSpan(MaxVirtqueuePairsOffset), checked((ushort)queuePairs));
        BinaryPrimitives.WriteUInt16LittleEndian(config.AsSpan(MtuOffset), checked((ushort)mtu));
        return config;
    }
}
