using System.Reflection;

namespace Vhost.Tests.Interop;

/// <summary>
/// The vhost ioctl numbers against known encodings: the rows of reference-anchors.md §1.3/§1.4
/// (rust-vmm's bindings) plus the newer ioctls of linux/vhost.h, each with its _IOC fields so the
/// <see cref="IoctlEncoding"/> helpers are checked against the constants too.
/// </summary>
public sealed class VhostIoctlsTests
{
    private const uint R = 2, W = 1, RW = 3, N = 0;

    /// <summary>name, known value, direction, number, argument size.</summary>
    private static readonly (string Name, uint Value, uint Direction, uint Number, uint Size)[] Known =
    [
        // §1.3 kernel vhost
        ("VHOST_GET_FEATURES", 0x8008AF00, R, 0x00, 8),
        ("VHOST_SET_FEATURES", 0x4008AF00, W, 0x00, 8),
        ("VHOST_SET_OWNER", 0xAF01, N, 0x01, 0),
        ("VHOST_RESET_OWNER", 0xAF02, N, 0x02, 0),
        ("VHOST_SET_MEM_TABLE", 0x4008AF03, W, 0x03, 8),
        ("VHOST_SET_LOG_BASE", 0x4008AF04, W, 0x04, 8),
        ("VHOST_SET_LOG_FD", 0x4004AF07, W, 0x07, 4),
        ("VHOST_SET_VRING_NUM", 0x4008AF10, W, 0x10, 8),
        ("VHOST_SET_VRING_ADDR", 0x4028AF11, W, 0x11, 40),
        ("VHOST_SET_VRING_BASE", 0x4008AF12, W, 0x12, 8),
        ("VHOST_GET_VRING_BASE", 0xC008AF12, RW, 0x12, 8),
        ("VHOST_SET_VRING_KICK", 0x4008AF20, W, 0x20, 8),
        ("VHOST_SET_VRING_CALL", 0x4008AF21, W, 0x21, 8),
        ("VHOST_SET_VRING_ERR", 0x4008AF22, W, 0x22, 8),
        ("VHOST_SET_BACKEND_FEATURES", 0x4008AF25, W, 0x25, 8),
        ("VHOST_GET_BACKEND_FEATURES", 0x8008AF26, R, 0x26, 8),
        ("VHOST_NET_SET_BACKEND", 0x4008AF30, W, 0x30, 8),
        ("VHOST_SCSI_SET_ENDPOINT", 0x40E8AF40, W, 0x40, 232),
        ("VHOST_SCSI_CLEAR_ENDPOINT", 0x40E8AF41, W, 0x41, 232),
        ("VHOST_SCSI_GET_ABI_VERSION", 0x4004AF42, W, 0x42, 4),
        ("VHOST_SCSI_SET_EVENTS_MISSED", 0x4004AF43, W, 0x43, 4),
        ("VHOST_SCSI_GET_EVENTS_MISSED", 0x4004AF44, W, 0x44, 4),
        ("VHOST_VSOCK_SET_GUEST_CID", 0x4008AF60, W, 0x60, 8),
        ("VHOST_VSOCK_SET_RUNNING", 0x4004AF61, W, 0x61, 4),

        // §1.4 vDPA
        ("VHOST_VDPA_GET_DEVICE_ID", 0x8004AF70, R, 0x70, 4),
        ("VHOST_VDPA_GET_STATUS", 0x8001AF71, R, 0x71, 1),
        ("VHOST_VDPA_SET_STATUS", 0x4001AF72, W, 0x72, 1),
        ("VHOST_VDPA_GET_CONFIG", 0x8008AF73, R, 0x73, 8),
        ("VHOST_VDPA_SET_CONFIG", 0x4008AF74, W, 0x74, 8),
        ("VHOST_VDPA_SET_VRING_ENABLE", 0x4008AF75, W, 0x75, 8),
        ("VHOST_VDPA_GET_VRING_NUM", 0x8002AF76, R, 0x76, 2),
        ("VHOST_VDPA_SET_CONFIG_CALL", 0x4004AF77, W, 0x77, 4),
        ("VHOST_VDPA_GET_IOVA_RANGE", 0x8010AF78, R, 0x78, 16),
        ("VHOST_VDPA_GET_CONFIG_SIZE", 0x8004AF79, R, 0x79, 4),
        ("VHOST_VDPA_GET_AS_NUM", 0x8004AF7A, R, 0x7A, 4),
        ("VHOST_VDPA_GET_VRING_GROUP", 0xC008AF7B, RW, 0x7B, 8),
        ("VHOST_VDPA_SET_GROUP_ASID", 0x4008AF7C, W, 0x7C, 8),
        ("VHOST_VDPA_SUSPEND", 0xAF7D, N, 0x7D, 0),
        ("VHOST_VDPA_GET_VQS_COUNT", 0x8004AF80, R, 0x80, 4),
        ("VHOST_VDPA_GET_GROUP_NUM", 0x8004AF81, R, 0x81, 4),

        // Not bound by rust-vmm (linux/vhost.h; GET_VRING_ENDIAN and GET_VRING_BUSYLOOP_TIMEOUT are _IOW there)
        ("VHOST_NEW_WORKER", 0x8004AF08, R, 0x08, 4),
        ("VHOST_FREE_WORKER", 0x4004AF09, W, 0x09, 4),
        ("VHOST_SET_VRING_ENDIAN", 0x4008AF13, W, 0x13, 8),
        ("VHOST_GET_VRING_ENDIAN", 0x4008AF14, W, 0x14, 8),
        ("VHOST_ATTACH_VRING_WORKER", 0x4008AF15, W, 0x15, 8),
        ("VHOST_GET_VRING_WORKER", 0xC008AF16, RW, 0x16, 8),
        ("VHOST_SET_VRING_BUSYLOOP_TIMEOUT", 0x4008AF23, W, 0x23, 8),
        ("VHOST_GET_VRING_BUSYLOOP_TIMEOUT", 0x4008AF24, W, 0x24, 8),
        ("VHOST_VDPA_RESUME", 0xAF7E, N, 0x7E, 0),
        ("VHOST_VDPA_GET_VRING_DESC_GROUP", 0xC008AF7F, RW, 0x7F, 8),
        ("VHOST_VDPA_GET_VRING_SIZE", 0xC008AF82, RW, 0x82, 8),
    ];

    public static TheoryData<string> Names => new(Known.Select(k => k.Name));

    [Fact]
    public void The_issue_examples()
    {
        Assert.Equal(0x8008AF00u, VhostIoctls.VHOST_GET_FEATURES);
        Assert.Equal(0xAF01u, VhostIoctls.VHOST_SET_OWNER);
        Assert.Equal(0xAFu, VhostIoctls.VhostVirtio);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Constant_has_the_known_value_and_agrees_with_the_helpers(string name)
    {
        var row = Known.Single(k => k.Name == name);
        uint actual = ConstantValue(name);
        Assert.True(row.Value == actual, $"{name} = 0x{actual:X8}, expected 0x{row.Value:X8}");

        uint viaHelper = row.Direction switch
        {
            N => IoctlEncoding.IO(VhostIoctls.VhostVirtio, row.Number),
            R => IoctlEncoding.IOR(VhostIoctls.VhostVirtio, row.Number, row.Size),
            W => IoctlEncoding.IOW(VhostIoctls.VhostVirtio, row.Number, row.Size),
            _ => IoctlEncoding.IOWR(VhostIoctls.VhostVirtio, row.Number, row.Size),
        };
        Assert.Equal(row.Value, viaHelper);
        Assert.Equal(row.Value, IoctlEncoding.Ioc(row.Direction, VhostIoctls.VhostVirtio, row.Number, row.Size));

        // And decoding the constant gives back its fields.
        Assert.Equal(row.Direction, actual >> IoctlEncoding.DirectionShift);
        Assert.Equal(row.Size, (actual >> IoctlEncoding.SizeShift) & IoctlEncoding.MaxSize);
        Assert.Equal(VhostIoctls.VhostVirtio, (actual >> IoctlEncoding.TypeShift) & 0xFF);
        Assert.Equal(row.Number, actual & 0xFF);
    }

    [Fact]
    public void Every_vhost_ioctl_constant_has_a_known_value_row()
    {
        string[] constants = typeof(VhostIoctls)
            .GetFields(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Where(f => f.IsLiteral && f.Name.StartsWith("VHOST_", StringComparison.Ordinal))
            .Select(f => f.Name)
            .ToArray();
        string[] missing = constants.Except(Known.Select(k => k.Name)).ToArray();
        Assert.True(missing.Length == 0, "VHOST_* constants without a known-value row: " + string.Join(", ", missing));
        Assert.Equal(Known.Length, Known.Select(k => k.Name).Distinct().Count());
        Assert.Empty(Known.Select(k => k.Name).Except(constants));
    }

    private static uint ConstantValue(string name)
    {
        FieldInfo? field = typeof(VhostIoctls).GetField(name, BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public);
        Assert.NotNull(field);
        return (uint)field.GetRawConstantValue()!;
    }
}
