using Vhost.User.Messages;

namespace VhostProbe;

/// <summary>Names of virtio feature bits (common and per device) and vhost-user protocol feature bits.</summary>
public static class FeatureNames
{
    private static readonly Dictionary<int, string> Common = new()
    {
        [24] = "VIRTIO_F_NOTIFY_ON_EMPTY",
        [26] = "VHOST_F_LOG_ALL",
        [27] = "VIRTIO_F_ANY_LAYOUT",
        [28] = "VIRTIO_RING_F_INDIRECT_DESC",
        [29] = "VIRTIO_RING_F_EVENT_IDX",
        [30] = "VHOST_USER_F_PROTOCOL_FEATURES",
        [32] = "VIRTIO_F_VERSION_1",
        [33] = "VIRTIO_F_ACCESS_PLATFORM",
        [34] = "VIRTIO_F_RING_PACKED",
        [35] = "VIRTIO_F_IN_ORDER",
        [36] = "VIRTIO_F_ORDER_PLATFORM",
        [37] = "VIRTIO_F_SR_IOV",
        [38] = "VIRTIO_F_NOTIFICATION_DATA",
        [39] = "VIRTIO_F_NOTIF_CONFIG_DATA",
        [40] = "VIRTIO_F_RING_RESET",
        [41] = "VIRTIO_F_ADMIN_VQ",
    };

    private static readonly Dictionary<int, string> Blk = new()
    {
        [0] = "VIRTIO_BLK_F_BARRIER",
        [1] = "VIRTIO_BLK_F_SIZE_MAX",
        [2] = "VIRTIO_BLK_F_SEG_MAX",
        [4] = "VIRTIO_BLK_F_GEOMETRY",
        [5] = "VIRTIO_BLK_F_RO",
        [6] = "VIRTIO_BLK_F_BLK_SIZE",
        [7] = "VIRTIO_BLK_F_SCSI",
        [9] = "VIRTIO_BLK_F_FLUSH",
        [10] = "VIRTIO_BLK_F_TOPOLOGY",
        [11] = "VIRTIO_BLK_F_CONFIG_WCE",
        [12] = "VIRTIO_BLK_F_MQ",
        [13] = "VIRTIO_BLK_F_DISCARD",
        [14] = "VIRTIO_BLK_F_WRITE_ZEROES",
        [15] = "VIRTIO_BLK_F_LIFETIME",
        [16] = "VIRTIO_BLK_F_SECURE_ERASE",
        [17] = "VIRTIO_BLK_F_ZONED",
    };

    private static readonly Dictionary<int, string> Net = new()
    {
        [0] = "VIRTIO_NET_F_CSUM",
        [1] = "VIRTIO_NET_F_GUEST_CSUM",
        [2] = "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS",
        [3] = "VIRTIO_NET_F_MTU",
        [5] = "VIRTIO_NET_F_MAC",
        [6] = "VIRTIO_NET_F_GSO",
        [7] = "VIRTIO_NET_F_GUEST_TSO4",
        [8] = "VIRTIO_NET_F_GUEST_TSO6",
        [9] = "VIRTIO_NET_F_GUEST_ECN",
        [10] = "VIRTIO_NET_F_GUEST_UFO",
        [11] = "VIRTIO_NET_F_HOST_TSO4",
        [12] = "VIRTIO_NET_F_HOST_TSO6",
        [13] = "VIRTIO_NET_F_HOST_ECN",
        [14] = "VIRTIO_NET_F_HOST_UFO",
        [15] = "VIRTIO_NET_F_MRG_RXBUF",
        [16] = "VIRTIO_NET_F_STATUS",
        [17] = "VIRTIO_NET_F_CTRL_VQ",
        [18] = "VIRTIO_NET_F_CTRL_RX",
        [19] = "VIRTIO_NET_F_CTRL_VLAN",
        [20] = "VIRTIO_NET_F_CTRL_RX_EXTRA",
        [21] = "VIRTIO_NET_F_GUEST_ANNOUNCE",
        [22] = "VIRTIO_NET_F_MQ",
        [23] = "VIRTIO_NET_F_CTRL_MAC_ADDR",
        [54] = "VIRTIO_NET_F_GUEST_USO4",
        [55] = "VIRTIO_NET_F_GUEST_USO6",
        [56] = "VIRTIO_NET_F_HOST_USO",
        [57] = "VIRTIO_NET_F_HASH_REPORT",
        [59] = "VIRTIO_NET_F_GUEST_HDRLEN",
        [60] = "VIRTIO_NET_F_RSS",
        [61] = "VIRTIO_NET_F_RSC_EXT",
        [62] = "VIRTIO_NET_F_STANDBY",
        [63] = "VIRTIO_NET_F_SPEED_DUPLEX",
    };

    private static readonly Dictionary<int, string> Fs = new()
    {
        [0] = "VIRTIO_FS_F_NOTIFICATION",
    };

    private static readonly string[] Protocol =
    [
        "MQ", "LOG_SHMFD", "RARP", "REPLY_ACK", "NET_MTU", "BACKEND_REQ", "CROSS_ENDIAN", "CRYPTO_SESSION",
        "PAGEFAULT", "CONFIG", "BACKEND_SEND_FD", "HOST_NOTIFIER", "INFLIGHT_SHMFD", "RESET_DEVICE",
        "INBAND_NOTIFICATIONS", "CONFIGURE_MEM_SLOTS", "STATUS", "XEN_MMAP", "SHARED_OBJECT", "DEVICE_STATE",
        "GET_VRING_BASE_INFLIGHT", "GPA_ADDRESSES", "SHMEM", "GET_VRING_BASE_SKIP_DRAIN",
    ];

    /// <summary>Names every set bit of <paramref name="features"/>; unknown bits read <c>BIT_n</c>.</summary>
    /// <param name="features">Virtio feature bits.</param>
    /// <param name="device">Which device-specific names apply to bits 0–23 and 50–63.</param>
    /// <returns>Names in bit order.</returns>
    public static List<string> Decode(ulong features, DeviceKind device)
    {
        var names = new List<string>();
        Dictionary<int, string>? specific = device switch
        {
            DeviceKind.Blk => Blk,
            DeviceKind.Net => Net,
            DeviceKind.Fs => Fs,
            _ => null,
        };
        for (int bit = 0; bit < 64; bit++)
        {
            if ((features & (1UL << bit)) == 0)
            {
                continue;
            }

            bool deviceRange = bit < 24 || bit >= 50;
            if (deviceRange && specific is not null && specific.TryGetValue(bit, out string? s))
            {
                names.Add(s);
            }
            else if (!deviceRange && Common.TryGetValue(bit, out string? c))
            {
                names.Add(c);
            }
            else
            {
                names.Add($"BIT_{bit}");
            }
        }

        return names;
    }

    /// <summary>Names every set protocol feature bit (VHOST_USER_PROTOCOL_F_ without the prefix).</summary>
    /// <param name="features">Protocol features.</param>
    /// <returns>Names in bit order.</returns>
    public static List<string> Decode(VhostUserProtocolFeatures features)
    {
        var names = new List<string>();
        for (int bit = 0; bit < 64; bit++)
        {
            if (((ulong)features & (1UL << bit)) != 0)
            {
                names.Add(bit < Protocol.Length ? Protocol[bit] : $"BIT_{bit}");
            }
        }

        return names;
    }

    /// <summary>
    /// Guesses the device type from the device-specific feature bits: a bit in 18–23 is net
    /// only (CTRL_RX … CTRL_MAC_ADDR); else any bit in 0–17 is read as blk; no device bit at all
    /// (virtiofsd offers none) as fs.
    /// </summary>
    /// <param name="features">The offered features.</param>
    /// <returns>The guess.</returns>
    public static DeviceKind Infer(ulong features)
    {
        if ((features & 0xFC_0000UL) != 0 || (features & 0xFFFC_0000_0000_0000UL) != 0)
        {
            return DeviceKind.Net;
        }

        if ((features & 0x3_FFFFUL) != 0)
        {
            return DeviceKind.Blk;
        }

        return DeviceKind.Fs;
    }
}
