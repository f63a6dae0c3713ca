using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Vhost.Virtio;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Devices.Input;
using VhostUserBackend.Devices.Net;

namespace VhostUserBackend.Tests.Devices;

/// <summary>
/// The device building blocks' guest-memory structs: size and every field offset as the spec
/// has them, and the structs, feature bits and constants cross-checked against this machine's
/// Linux headers (<c>linux/virtio_*.h</c>).
/// </summary>
public sealed class DeviceLayoutTests
{
    private readonly ITestOutputHelper _output;

    public DeviceLayoutTests(ITestOutputHelper output) => _output = output;

    /// <summary>Type, size, then (field, offset) pairs; private fields (padding, inline arrays) start with '_'.</summary>
    public static TheoryData<Type, int, string[], int[]> Layouts => new()
    {
        { typeof(VirtioBlkRequestHeader), 16, ["Type", "Reserved", "Sector"], [0, 4, 8] },
        { typeof(VirtioBlkDiscardWriteZeroes), 16, ["Sector", "NumSectors", "Flags"], [0, 8, 12] },
        {
            typeof(VirtioBlkConfig), 96,
            ["Capacity", "SizeMax", "SegMax", "Cylinders", "Heads", "SectorsPerTrack", "BlockSize", "PhysicalBlockExponent", "AlignmentOffset", "MinIoSize", "OptIoSize",
             "Writeback", "_unused0", "NumQueues", "MaxDiscardSectors", "MaxDiscardSegments", "DiscardSectorAlignment", "MaxWriteZeroesSectors", "MaxWriteZeroesSegments",
             "WriteZeroesMayUnmap", "_unused1a", "_unused1b", "MaxSecureEraseSectors", "MaxSecureEraseSegments", "SecureEraseSectorAlignment",
             "ZoneSectors", "MaxOpenZones", "MaxActiveZones", "MaxAppendSectors", "WriteGranularity", "ZonedModel", "_unused2a", "_unused2b"],
            [0, 8, 12, 16, 18, 19, 20, 24, 25, 26, 28, 32, 33, 34, 36, 40, 44, 48, 52, 56, 57, 58, 60, 64, 68, 72, 76, 80, 84, 88, 92, 93, 94]
        },
        { typeof(VirtioNetHeader), 12, ["Flags", "GsoType", "HeaderLength", "GsoSize", "CsumStart", "CsumOffset", "NumBuffers"], [0, 1, 2, 4, 6, 8, 10] },
        {
            typeof(VirtioNetConfig), 24,
            ["_mac", "Status", "MaxVirtqueuePairs", "Mtu", "Speed", "Duplex", "RssMaxKeySize", "RssMaxIndirectionTableLength", "SupportedHashTypes"],
            [0, 6, 8, 10, 12, 16, 17, 18, 20]
        },
        { typeof(VirtioInputConfig), 136, ["Select", "Subsel", "PayloadSize", "_reserved0", "_reserved1", "_payload"], [0, 1, 2, 3, 4, 8] },
        { typeof(VirtioInputAbsInfo), 20, ["Min", "Max", "Fuzz", "Flat", "Resolution"], [0, 4, 8, 12, 16] },
        { typeof(VirtioInputDevIds), 8, ["BusType", "Vendor", "Product", "Version"], [0, 2, 4, 6] },
        { typeof(VirtioInputEvent), 8, ["Type", "Code", "Value"], [0, 2, 4] },
    };

    /// <summary>C struct, then (C# field, C member) pairs checked with <c>offsetof</c>, and whether <c>sizeof</c> is checked too.</summary>
    private static readonly (Type Type, string CStruct, bool CheckSize, (string Field, string CMember)[] Fields)[] CStructs =
    [
        (typeof(VirtioBlkRequestHeader), "struct virtio_blk_outhdr", true, [("Type", "type"), ("Reserved", "ioprio"), ("Sector", "sector")]),
        (typeof(VirtioBlkDiscardWriteZeroes), "struct virtio_blk_discard_write_zeroes", true, [("Sector", "sector"), ("NumSectors", "num_sectors"), ("Flags", "flags")]),

        // Linux 6.1's struct ends before the zoned fields (added in 6.3): offsets only.
        (typeof(VirtioBlkConfig), "struct virtio_blk_config", false,
        [
            ("Capacity", "capacity"), ("SizeMax", "size_max"), ("SegMax", "seg_max"), ("Cylinders", "geometry.cylinders"), ("Heads", "geometry.heads"),
            ("SectorsPerTrack", "geometry.sectors"), ("BlockSize", "blk_size"), ("PhysicalBlockExponent", "physical_block_exp"), ("AlignmentOffset", "alignment_offset"),
            ("MinIoSize", "min_io_size"), ("OptIoSize", "opt_io_size"), ("Writeback", "wce"), ("NumQueues", "num_queues"), ("MaxDiscardSectors", "max_discard_sectors"),
            ("MaxDiscardSegments", "max_discard_seg"), ("DiscardSectorAlignment", "discard_sector_alignment"), ("MaxWriteZeroesSectors", "max_write_zeroes_sectors"),
            ("MaxWriteZeroesSegments", "max_write_zeroes_seg"), ("WriteZeroesMayUnmap", "write_zeroes_may_unmap"), ("MaxSecureEraseSectors", "max_secure_erase_sectors"),
            ("MaxSecureEraseSegments", "max_secure_erase_seg"), ("SecureEraseSectorAlignment", "secure_erase_sector_alignment"),
        ]),
        (typeof(VirtioNetHeader), "struct virtio_net_hdr_mrg_rxbuf", true,
        [
            ("Flags", "hdr.flags"), ("GsoType", "hdr.gso_type"), ("HeaderLength", "hdr.hdr_len"), ("GsoSize", "hdr.gso_size"), ("CsumStart", "hdr.csum_start"),
            ("CsumOffset", "hdr.csum_offset"), ("NumBuffers", "num_buffers"),
        ]),
        (typeof(VirtioNetConfig), "struct virtio_net_config", true,
        [
            ("_mac", "mac"), ("Status", "status"), ("MaxVirtqueuePairs", "max_virtqueue_pairs"), ("Mtu", "mtu"), ("Speed", "speed"), ("Duplex", "duplex"),
            ("RssMaxKeySize", "rss_max_key_size"), ("RssMaxIndirectionTableLength", "rss_max_indirection_table_length"), ("SupportedHashTypes", "supported_hash_types"),
        ]),
        (typeof(VirtioInputConfig), "struct virtio_input_config", true, [("Select", "select"), ("Subsel", "subsel"), ("PayloadSize", "size"), ("_payload", "u")]),
        (typeof(VirtioInputAbsInfo), "struct virtio_input_absinfo", true, [("Min", "min"), ("Max", "max"), ("Fuzz", "fuzz"), ("Flat", "flat"), ("Resolution", "res")]),
        (typeof(VirtioInputDevIds), "struct virtio_input_devids", true, [("BusType", "bustype"), ("Vendor", "vendor"), ("Product", "product"), ("Version", "version")]),
        (typeof(VirtioInputEvent), "struct virtio_input_event", true, [("Type", "type"), ("Code", "code"), ("Value", "value")]),
    ];

    /// <summary>Constants newer than Linux 6.1's headers: checked where the headers define them.</summary>
    private static readonly HashSet<string> MayBeUndefined =
    [
        "VIRTIO_F_NOTIFICATION_DATA", "VIRTIO_F_NOTIF_CONFIG_DATA", "VIRTIO_F_ADMIN_VQ", "VIRTIO_BLK_F_LIFETIME", "VIRTIO_BLK_F_ZONED", "VIRTIO_BLK_T_GET_LIFETIME",
        "VIRTIO_NET_F_DEVICE_STATS", "VIRTIO_NET_F_VQ_NOTF_COAL", "VIRTIO_NET_F_GUEST_USO4", "VIRTIO_NET_F_GUEST_USO6", "VIRTIO_NET_F_HOST_USO",
        "VIRTIO_NET_F_GUEST_HDRLEN", "VIRTIO_NET_HDR_GSO_UDP_L4", "VIRTIO_NET_HDR_F_RSC_INFO",
    ];

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Struct_size_and_field_offsets_match_the_spec(Type type, int size, string[] fields, int[] offsets)
    {
        Assert.Equal(size, Marshal.SizeOf(type));
        Assert.Equal(size, (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!);
        Assert.Equal(size, (int)type.GetField("Size")!.GetRawConstantValue()!);
        Assert.Equal(fields.Where(f => !f.StartsWith('_')).Order(), type.GetFields().Where(f => !f.IsStatic).Select(f => f.Name).Order());
        for (int i = 0; i < fields.Length; i++)
        {
            Assert.Equal(offsets[i], (int)Marshal.OffsetOf(type, fields[i]));
        }
    }

    [Fact]
    public void Every_device_struct_has_a_layout_row()
    {
        var covered = Layouts.Select(row => (Type)row.Data.Item1).ToHashSet();
        Type[] structs = typeof(VirtioBlkRequest).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsEnum && t.IsPublic && t.Namespace?.StartsWith("VhostUserBackend.Devices", StringComparison.Ordinal) == true && t.StructLayoutAttribute?.Pack == 1)
            .ToArray();
        Assert.NotEmpty(structs);
        Assert.All(structs, t => Assert.Contains(t, covered));
    }

    [Fact]
    public void Offset_constants_match_the_fields()
    {
        Assert.Equal(VirtioBlkConfig.WritebackOffset, (int)Marshal.OffsetOf<VirtioBlkConfig>(nameof(VirtioBlkConfig.Writeback)));
        Assert.Equal(VirtioNetHeader.NumBuffersOffset, (int)Marshal.OffsetOf<VirtioNetHeader>(nameof(VirtioNetHeader.NumBuffers)));
        Assert.Equal(VirtioInputConfig.SelectOffset, (int)Marshal.OffsetOf<VirtioInputConfig>(nameof(VirtioInputConfig.Select)));
        Assert.Equal(VirtioInputConfig.SubselOffset, (int)Marshal.OffsetOf<VirtioInputConfig>(nameof(VirtioInputConfig.Subsel)));
        Assert.Equal(VirtioInputConfig.PayloadOffset, (int)Marshal.OffsetOf<VirtioInputConfig>("_payload"));
        Assert.Equal(VirtioInputConfig.Size, VirtioInputConfig.PayloadOffset + VirtioInputConfig.PayloadLength);
    }

    [Fact]
    public void Structs_and_constants_agree_with_the_linux_headers()
    {
        if (!BitConverter.IsLittleEndian)
        {
            Assert.Skip("the C# structs are little-endian host layouts");
        }

        string compiler = CHeaders.CompilerOrSkip();
        var c = new StringBuilder("""
            #include <stddef.h>
            #include <linux/virtio_config.h>
            #include <linux/virtio_ring.h>
            #include <linux/virtio_blk.h>
            #include <linux/virtio_net.h>
            #include <linux/virtio_input.h>
            #include <linux/input-event-codes.h>

            """);
        foreach ((Type type, string cStruct, bool checkSize, (string Field, string CMember)[] fields) in CStructs)
        {
            if (checkSize)
            {
                c.AppendLine(FormattableString.Invariant($"_Static_assert(sizeof({cStruct}) == {Marshal.SizeOf(type)}, \"sizeof({cStruct})\");"));
            }

            foreach ((string field, string member) in fields)
            {
                c.AppendLine(FormattableString.Invariant($"_Static_assert(offsetof({cStruct}, {member}) == {(int)Marshal.OffsetOf(type, field)}, \"{cStruct}.{member}\");"));
            }
        }

        foreach ((string name, ulong value, bool isBit) in Constants())
        {
            string check = isBit ? $"(1ULL << {name}) == {value}ULL" : $"{name} == {value}ULL";
            c.AppendLine(MayBeUndefined.Contains(name)
                ? $"#ifdef {name}\n_Static_assert({check}, \"{name}\");\n#endif"
                : $"_Static_assert({check}, \"{name}\");");
        }

        string file = Path.Combine(Path.GetTempPath(), $"vhost-devices-{Environment.ProcessId}.c");
        File.WriteAllText(file, c.ToString());
        try
        {
            (int exit, string output) = CHeaders.Compile(compiler, file);
            _output.WriteLine(output);
            Assert.True(exit == 0, "the Linux headers disagree:\n" + output);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static IEnumerable<(string Name, ulong Value, bool IsBit)> Constants()
    {
        (string, VirtioFeatures)[] generic =
        [
            ("VIRTIO_F_NOTIFY_ON_EMPTY", VirtioFeatures.NotifyOnEmpty), ("VIRTIO_F_ANY_LAYOUT", VirtioFeatures.AnyLayout),
            ("VIRTIO_RING_F_INDIRECT_DESC", VirtioFeatures.RingIndirectDescriptors), ("VIRTIO_RING_F_EVENT_IDX", VirtioFeatures.RingEventIndex),
            ("VIRTIO_F_VERSION_1", VirtioFeatures.Version1), ("VIRTIO_F_ACCESS_PLATFORM", VirtioFeatures.AccessPlatform), ("VIRTIO_F_RING_PACKED", VirtioFeatures.RingPacked),
            ("VIRTIO_F_IN_ORDER", VirtioFeatures.InOrder), ("VIRTIO_F_ORDER_PLATFORM", VirtioFeatures.OrderPlatform), ("VIRTIO_F_SR_IOV", VirtioFeatures.SrIov),
            ("VIRTIO_F_NOTIFICATION_DATA", VirtioFeatures.NotificationData), ("VIRTIO_F_NOTIF_CONFIG_DATA", VirtioFeatures.NotificationConfigData),
            ("VIRTIO_F_RING_RESET", VirtioFeatures.RingReset), ("VIRTIO_F_ADMIN_VQ", VirtioFeatures.AdminVirtqueue),
        ];
        (string, VirtioBlkFeatures)[] blk =
        [
            ("VIRTIO_BLK_F_SIZE_MAX", VirtioBlkFeatures.SizeMax), ("VIRTIO_BLK_F_SEG_MAX", VirtioBlkFeatures.SegMax), ("VIRTIO_BLK_F_GEOMETRY", VirtioBlkFeatures.Geometry),
            ("VIRTIO_BLK_F_RO", VirtioBlkFeatures.ReadOnly), ("VIRTIO_BLK_F_BLK_SIZE", VirtioBlkFeatures.BlockSize), ("VIRTIO_BLK_F_FLUSH", VirtioBlkFeatures.Flush),
            ("VIRTIO_BLK_F_TOPOLOGY", VirtioBlkFeatures.Topology), ("VIRTIO_BLK_F_CONFIG_WCE", VirtioBlkFeatures.ConfigWce), ("VIRTIO_BLK_F_MQ", VirtioBlkFeatures.MultiQueue),
            ("VIRTIO_BLK_F_DISCARD", VirtioBlkFeatures.Discard), ("VIRTIO_BLK_F_WRITE_ZEROES", VirtioBlkFeatures.WriteZeroes), ("VIRTIO_BLK_F_LIFETIME", VirtioBlkFeatures.Lifetime),
            ("VIRTIO_BLK_F_SECURE_ERASE", VirtioBlkFeatures.SecureErase), ("VIRTIO_BLK_F_ZONED", VirtioBlkFeatures.Zoned),
        ];
        (string, VirtioNetFeatures)[] net =
        [
            ("VIRTIO_NET_F_CSUM", VirtioNetFeatures.Csum), ("VIRTIO_NET_F_GUEST_CSUM", VirtioNetFeatures.GuestCsum), ("VIRTIO_NET_F_CTRL_GUEST_OFFLOADS", VirtioNetFeatures.ControlGuestOffloads),
            ("VIRTIO_NET_F_MTU", VirtioNetFeatures.Mtu), ("VIRTIO_NET_F_MAC", VirtioNetFeatures.Mac), ("VIRTIO_NET_F_GUEST_TSO4", VirtioNetFeatures.GuestTso4),
            ("VIRTIO_NET_F_GUEST_TSO6", VirtioNetFeatures.GuestTso6), ("VIRTIO_NET_F_GUEST_ECN", VirtioNetFeatures.GuestEcn), ("VIRTIO_NET_F_GUEST_UFO", VirtioNetFeatures.GuestUfo),
            ("VIRTIO_NET_F_HOST_TSO4", VirtioNetFeatures.HostTso4), ("VIRTIO_NET_F_HOST_TSO6", VirtioNetFeatures.HostTso6), ("VIRTIO_NET_F_HOST_ECN", VirtioNetFeatures.HostEcn),
            ("VIRTIO_NET_F_HOST_UFO", VirtioNetFeatures.HostUfo), ("VIRTIO_NET_F_MRG_RXBUF", VirtioNetFeatures.MergeableRxBuffers), ("VIRTIO_NET_F_STATUS", VirtioNetFeatures.Status),
            ("VIRTIO_NET_F_CTRL_VQ", VirtioNetFeatures.ControlVirtqueue), ("VIRTIO_NET_F_CTRL_RX", VirtioNetFeatures.ControlRx), ("VIRTIO_NET_F_CTRL_VLAN", VirtioNetFeatures.ControlVlan),
            ("VIRTIO_NET_F_CTRL_RX_EXTRA", VirtioNetFeatures.ControlRxExtra), ("VIRTIO_NET_F_GUEST_ANNOUNCE", VirtioNetFeatures.GuestAnnounce), ("VIRTIO_NET_F_MQ", VirtioNetFeatures.MultiQueue),
            ("VIRTIO_NET_F_CTRL_MAC_ADDR", VirtioNetFeatures.ControlMacAddress), ("VIRTIO_NET_F_DEVICE_STATS", VirtioNetFeatures.DeviceStats),
            ("VIRTIO_NET_F_VQ_NOTF_COAL", VirtioNetFeatures.VirtqueueNotificationCoalescing), ("VIRTIO_NET_F_NOTF_COAL", VirtioNetFeatures.NotificationCoalescing),
            ("VIRTIO_NET_F_GUEST_USO4", VirtioNetFeatures.GuestUso4), ("VIRTIO_NET_F_GUEST_USO6", VirtioNetFeatures.GuestUso6), ("VIRTIO_NET_F_HOST_USO", VirtioNetFeatures.HostUso),
            ("VIRTIO_NET_F_HASH_REPORT", VirtioNetFeatures.HashReport), ("VIRTIO_NET_F_GUEST_HDRLEN", VirtioNetFeatures.GuestHeaderLength), ("VIRTIO_NET_F_RSS", VirtioNetFeatures.Rss),
            ("VIRTIO_NET_F_RSC_EXT", VirtioNetFeatures.RscExtension), ("VIRTIO_NET_F_STANDBY", VirtioNetFeatures.Standby), ("VIRTIO_NET_F_SPEED_DUPLEX", VirtioNetFeatures.SpeedDuplex),
        ];
        (string, ulong)[] values =
        [
            ("VIRTIO_BLK_T_IN", (ulong)VirtioBlkRequestType.In), ("VIRTIO_BLK_T_OUT", (ulong)VirtioBlkRequestType.Out), ("VIRTIO_BLK_T_FLUSH", (ulong)VirtioBlkRequestType.Flush),
            ("VIRTIO_BLK_T_GET_ID", (ulong)VirtioBlkRequestType.GetId), ("VIRTIO_BLK_T_GET_LIFETIME", (ulong)VirtioBlkRequestType.GetLifetime),
            ("VIRTIO_BLK_T_DISCARD", (ulong)VirtioBlkRequestType.Discard), ("VIRTIO_BLK_T_WRITE_ZEROES", (ulong)VirtioBlkRequestType.WriteZeroes),
            ("VIRTIO_BLK_T_SECURE_ERASE", (ulong)VirtioBlkRequestType.SecureErase),
            ("VIRTIO_BLK_S_OK", (ulong)VirtioBlkStatus.Ok), ("VIRTIO_BLK_S_IOERR", (ulong)VirtioBlkStatus.IoError), ("VIRTIO_BLK_S_UNSUPP", (ulong)VirtioBlkStatus.Unsupported),
            ("VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP", (ulong)VirtioBlkDiscardFlags.Unmap), ("VIRTIO_BLK_ID_BYTES", VirtioBlkRequest.IdBytes),
            ("VIRTIO_NET_HDR_F_NEEDS_CSUM", (ulong)VirtioNetHeaderFlags.NeedsCsum), ("VIRTIO_NET_HDR_F_DATA_VALID", (ulong)VirtioNetHeaderFlags.DataValid),
            ("VIRTIO_NET_HDR_F_RSC_INFO", (ulong)VirtioNetHeaderFlags.RscInfo),
            ("VIRTIO_NET_HDR_GSO_NONE", (ulong)VirtioNetGsoType.None), ("VIRTIO_NET_HDR_GSO_TCPV4", (ulong)VirtioNetGsoType.TcpV4), ("VIRTIO_NET_HDR_GSO_UDP", (ulong)VirtioNetGsoType.Udp),
            ("VIRTIO_NET_HDR_GSO_TCPV6", (ulong)VirtioNetGsoType.TcpV6), ("VIRTIO_NET_HDR_GSO_UDP_L4", (ulong)VirtioNetGsoType.UdpL4), ("VIRTIO_NET_HDR_GSO_ECN", (ulong)VirtioNetGsoType.Ecn),
            ("VIRTIO_NET_S_LINK_UP", (ulong)VirtioNetStatus.LinkUp), ("VIRTIO_NET_S_ANNOUNCE", (ulong)VirtioNetStatus.Announce),
            ("VIRTIO_INPUT_CFG_UNSET", (ulong)VirtioInputConfigSelect.Unset), ("VIRTIO_INPUT_CFG_ID_NAME", (ulong)VirtioInputConfigSelect.IdName),
            ("VIRTIO_INPUT_CFG_ID_SERIAL", (ulong)VirtioInputConfigSelect.IdSerial), ("VIRTIO_INPUT_CFG_ID_DEVIDS", (ulong)VirtioInputConfigSelect.IdDevIds),
            ("VIRTIO_INPUT_CFG_PROP_BITS", (ulong)VirtioInputConfigSelect.PropertyBits), ("VIRTIO_INPUT_CFG_EV_BITS", (ulong)VirtioInputConfigSelect.EventBits),
            ("VIRTIO_INPUT_CFG_ABS_INFO", (ulong)VirtioInputConfigSelect.AbsInfo),
            ("EV_SYN", (ulong)VirtioInputEventType.Synchronization), ("EV_KEY", (ulong)VirtioInputEventType.Key), ("EV_REL", (ulong)VirtioInputEventType.Relative),
            ("EV_ABS", (ulong)VirtioInputEventType.Absolute), ("EV_MSC", (ulong)VirtioInputEventType.Miscellaneous), ("EV_SW", (ulong)VirtioInputEventType.Switch),
            ("EV_LED", (ulong)VirtioInputEventType.Led), ("EV_SND", (ulong)VirtioInputEventType.Sound), ("EV_REP", (ulong)VirtioInputEventType.Repeat),
            ("EV_FF", (ulong)VirtioInputEventType.ForceFeedback), ("EV_PWR", (ulong)VirtioInputEventType.Power), ("EV_FF_STATUS", (ulong)VirtioInputEventType.ForceFeedbackStatus),
            ("KEY_RESERVED", (ulong)VirtioInputKeyCode.Reserved), ("KEY_ESC", (ulong)VirtioInputKeyCode.Escape), ("KEY_1", (ulong)VirtioInputKeyCode.D1), ("KEY_2", (ulong)VirtioInputKeyCode.D2),
            ("KEY_3", (ulong)VirtioInputKeyCode.D3), ("KEY_4", (ulong)VirtioInputKeyCode.D4), ("KEY_5", (ulong)VirtioInputKeyCode.D5), ("KEY_6", (ulong)VirtioInputKeyCode.D6),
            ("KEY_7", (ulong)VirtioInputKeyCode.D7), ("KEY_8", (ulong)VirtioInputKeyCode.D8), ("KEY_9", (ulong)VirtioInputKeyCode.D9), ("KEY_0", (ulong)VirtioInputKeyCode.D0),
            ("KEY_MINUS", (ulong)VirtioInputKeyCode.Minus), ("KEY_EQUAL", (ulong)VirtioInputKeyCode.Equal), ("KEY_BACKSPACE", (ulong)VirtioInputKeyCode.Backspace), ("KEY_TAB", (ulong)VirtioInputKeyCode.Tab),
            ("KEY_Q", (ulong)VirtioInputKeyCode.Q), ("KEY_W", (ulong)VirtioInputKeyCode.W), ("KEY_E", (ulong)VirtioInputKeyCode.E), ("KEY_R", (ulong)VirtioInputKeyCode.R),
            ("KEY_T", (ulong)VirtioInputKeyCode.T), ("KEY_Y", (ulong)VirtioInputKeyCode.Y), ("KEY_U", (ulong)VirtioInputKeyCode.U), ("KEY_I", (ulong)VirtioInputKeyCode.I),
            ("KEY_O", (ulong)VirtioInputKeyCode.O), ("KEY_P", (ulong)VirtioInputKeyCode.P), ("KEY_LEFTBRACE", (ulong)VirtioInputKeyCode.LeftBrace), ("KEY_RIGHTBRACE", (ulong)VirtioInputKeyCode.RightBrace),
            ("KEY_ENTER", (ulong)VirtioInputKeyCode.Enter), ("KEY_LEFTCTRL", (ulong)VirtioInputKeyCode.LeftCtrl), ("KEY_A", (ulong)VirtioInputKeyCode.A), ("KEY_S", (ulong)VirtioInputKeyCode.S),
            ("KEY_D", (ulong)VirtioInputKeyCode.D), ("KEY_F", (ulong)VirtioInputKeyCode.F), ("KEY_G", (ulong)VirtioInputKeyCode.G), ("KEY_H", (ulong)VirtioInputKeyCode.H),
            ("KEY_J", (ulong)VirtioInputKeyCode.J), ("KEY_K", (ulong)VirtioInputKeyCode.K), ("KEY_L", (ulong)VirtioInputKeyCode.L), ("KEY_SEMICOLON", (ulong)VirtioInputKeyCode.Semicolon),
            ("KEY_APOSTROPHE", (ulong)VirtioInputKeyCode.Apostrophe), ("KEY_GRAVE", (ulong)VirtioInputKeyCode.Grave), ("KEY_LEFTSHIFT", (ulong)VirtioInputKeyCode.LeftShift), ("KEY_BACKSLASH", (ulong)VirtioInputKeyCode.Backslash),
            ("KEY_Z", (ulong)VirtioInputKeyCode.Z), ("KEY_X", (ulong)VirtioInputKeyCode.X), ("KEY_C", (ulong)VirtioInputKeyCode.C), ("KEY_V", (ulong)VirtioInputKeyCode.V),
            ("KEY_B", (ulong)VirtioInputKeyCode.B), ("KEY_N", (ulong)VirtioInputKeyCode.N), ("KEY_M", (ulong)VirtioInputKeyCode.M), ("KEY_COMMA", (ulong)VirtioInputKeyCode.Comma),
            ("KEY_DOT", (ulong)VirtioInputKeyCode.Dot), ("KEY_SLASH", (ulong)VirtioInputKeyCode.Slash), ("KEY_RIGHTSHIFT", (ulong)VirtioInputKeyCode.RightShift), ("KEY_KPASTERISK", (ulong)VirtioInputKeyCode.KeypadAsterisk),
            ("KEY_LEFTALT", (ulong)VirtioInputKeyCode.LeftAlt), ("KEY_SPACE", (ulong)VirtioInputKeyCode.Space), ("KEY_CAPSLOCK", (ulong)VirtioInputKeyCode.CapsLock), ("KEY_F1", (ulong)VirtioInputKeyCode.F1),
            ("KEY_F2", (ulong)VirtioInputKeyCode.F2), ("KEY_F3", (ulong)VirtioInputKeyCode.F3), ("KEY_F4", (ulong)VirtioInputKeyCode.F4), ("KEY_F5", (ulong)VirtioInputKeyCode.F5),
            ("KEY_F6", (ulong)VirtioInputKeyCode.F6), ("KEY_F7", (ulong)VirtioInputKeyCode.F7), ("KEY_F8", (ulong)VirtioInputKeyCode.F8), ("KEY_F9", (ulong)VirtioInputKeyCode.F9),
            ("KEY_F10", (ulong)VirtioInputKeyCode.F10), ("KEY_NUMLOCK", (ulong)VirtioInputKeyCode.NumLock), ("KEY_SCROLLLOCK", (ulong)VirtioInputKeyCode.ScrollLock), ("LED_NUML", (ulong)VirtioInputLed.NumLock),
            ("LED_CAPSL", (ulong)VirtioInputLed.CapsLock), ("LED_SCROLLL", (ulong)VirtioInputLed.ScrollLock), ("LED_COMPOSE", (ulong)VirtioInputLed.Compose), ("LED_KANA", (ulong)VirtioInputLed.Kana),
            ("LED_SLEEP", (ulong)VirtioInputLed.Sleep), ("LED_SUSPEND", (ulong)VirtioInputLed.Suspend), ("LED_MUTE", (ulong)VirtioInputLed.Mute), ("LED_MISC", (ulong)VirtioInputLed.Misc),
            ("LED_MAIL", (ulong)VirtioInputLed.Mail), ("LED_CHARGING", (ulong)VirtioInputLed.Charging),
        ];

        // Every enum member is listed, so a new one needs a C name here.
        Assert.Equal(Enum.GetValues<VirtioFeatures>().Length - 1, generic.Length);
        Assert.Equal(Enum.GetValues<VirtioBlkFeatures>().Length - 1, blk.Length);
        Assert.Equal(Enum.GetValues<VirtioNetFeatures>().Length - 1, net.Length);
        Assert.Equal(Enum.GetValues<VirtioInputEventType>().Length, values.Count(v => v.Item1.StartsWith("EV_", StringComparison.Ordinal)));
        Assert.Equal(Enum.GetValues<VirtioInputKeyCode>().Length, values.Count(v => v.Item1.StartsWith("KEY_", StringComparison.Ordinal)));
        Assert.Equal(Enum.GetValues<VirtioInputLed>().Length, values.Count(v => v.Item1.StartsWith("LED_", StringComparison.Ordinal)));
        return generic.Select(g => (g.Item1, (ulong)g.Item2, true))
            .Concat(blk.Select(b => (b.Item1, (ulong)b.Item2, true)))
            .Concat(net.Select(n => (n.Item1, (ulong)n.Item2, true)))
            .Concat(values.Select(v => (v.Item1, v.Item2, false)));
    }
}
