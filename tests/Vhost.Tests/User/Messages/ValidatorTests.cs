using Vhost.User.Messages;

namespace Vhost.Tests.User.Messages;

public sealed class ValidatorTests
{
    [Fact]
    public void Header_checks_version_reserved_bits_and_size()
    {
        Assert.True(new VhostUserHeader(1, VhostUserHeaderFlags.Version1, 0).IsValid());
        Assert.True(new VhostUserHeader(1, VhostUserHeaderFlags.Reply | VhostUserHeaderFlags.NeedReply, 0x1000).IsValid());
        Assert.False(new VhostUserHeader { Request = 1, Flags = (VhostUserHeaderFlags)0x2, Size = 0 }.IsValid());
        Assert.False(new VhostUserHeader { Request = 1, Flags = VhostUserHeaderFlags.Version1 | (VhostUserHeaderFlags)0x10, Size = 0 }.IsValid());
        Assert.False(new VhostUserHeader(1, VhostUserHeaderFlags.Version1, 0x1001).IsValid());
    }

    [Fact]
    public void Vring_address_checks_alignment_and_flags()
    {
        var ok = new VhostUserVringAddress { DescriptorTableAddress = 0x1000, UsedRingAddress = 0x2004, AvailableRingAddress = 0x3002 };
        Assert.True(ok.IsValid());
        Assert.False((ok with { DescriptorTableAddress = 0x1008 }).IsValid());
        Assert.False((ok with { UsedRingAddress = 0x2002 }).IsValid());
        Assert.False((ok with { AvailableRingAddress = 0x3001 }).IsValid());
        Assert.False((ok with { Flags = (VhostUserVringAddressFlags)2 }).IsValid());
        Assert.True((ok with { Flags = VhostUserVringAddressFlags.Log }).IsValid());
    }

    [Fact]
    public void Memory_header_allows_one_to_eight_regions()
    {
        Assert.False(new VhostUserMemoryHeader { RegionCount = 0 }.IsValid());
        Assert.True(new VhostUserMemoryHeader { RegionCount = 8 }.IsValid());
        Assert.False(new VhostUserMemoryHeader { RegionCount = 9 }.IsValid());
        Assert.False(new VhostUserMemoryHeader { RegionCount = 1, Padding = 1 }.IsValid());
    }

    [Fact]
    public void Region_rejects_zero_size_and_wrap()
    {
        Assert.True(new VhostUserMemoryRegion(0, 0x1000, 0x7f0000000000, 0).IsValid());
        Assert.False(new VhostUserMemoryRegion(0, 0, 0, 0).IsValid());
        Assert.False(new VhostUserMemoryRegion(ulong.MaxValue - 0xFFF, 0x2000, 0, 0).IsValid());
        Assert.True(new VhostUserMemoryRegion(ulong.MaxValue - 0xFFF, 0x1000, 0, 0).IsValid());
        Assert.False(new VhostUserSingleMemoryRegion(new VhostUserMemoryRegion(0, 0x1000, ulong.MaxValue, 0)).IsValid());
    }

    [Fact]
    public void Config_header_checks_size_offset_and_flags()
    {
        Assert.True(new VhostUserConfigHeader(0, 256, VhostUserConfigFlags.None).IsValid());
        Assert.False(new VhostUserConfigHeader(0, 0, VhostUserConfigFlags.None).IsValid());
        Assert.False(new VhostUserConfigHeader(0, 257, VhostUserConfigFlags.None).IsValid());
        Assert.False(new VhostUserConfigHeader(0xFF0, 0x20, VhostUserConfigFlags.None).IsValid());
        Assert.False(new VhostUserConfigHeader(0, 4, (VhostUserConfigFlags)4).IsValid());
        Assert.True(new VhostUserConfigHeader(0, 4, VhostUserConfigFlags.LiveMigration | VhostUserConfigFlags.Writable).IsValid());
    }

    [Fact]
    public void Other_payloads_validate()
    {
        Assert.False(new VhostUserLog(0, 0).IsValid());
        Assert.True(new VhostUserLog(0x1000, 0).IsValid());
        Assert.False(new VhostUserInflight { QueueCount = 0, QueueSize = 256 }.IsValid());
        Assert.True(new VhostUserInflight { QueueCount = 2, QueueSize = 256 }.IsValid());
        Assert.False(new VhostUserSharedObject(Guid.Empty).IsValid());
        Assert.False(new VhostUserSharedObject(Guid.AllBitsSet).IsValid());
        Assert.True(new VhostUserSharedObject(Guid.NewGuid()).IsValid());
        Assert.True(new VhostUserDeviceStateTransfer(VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped).IsValid());
        Assert.False(new VhostUserDeviceStateTransfer((VhostUserTransferDirection)2, VhostUserTransferPhase.Stopped).IsValid());
        Assert.True(new VhostUserVringArea { IndexAndFlags = 0x1FF }.IsValid());
        Assert.False(new VhostUserVringArea { IndexAndFlags = 0x200 }.IsValid());
        Assert.True(new VhostUserShmemMap { Length = 0x1000, Flags = VhostUserShmemMapFlags.Writable }.IsValid());
        Assert.False(new VhostUserShmemMap { Length = 0 }.IsValid());
        Assert.False(new VhostUserShmemMap { Length = 0x1000, Flags = (VhostUserShmemMapFlags)2 }.IsValid());
        Assert.True(new VhostUserIotlbMessage { Type = VhostIotlbType.Update, Size = 0x1000, Permission = VhostIotlbAccess.ReadWrite }.IsValid());
        Assert.False(new VhostUserIotlbMessage { Type = (VhostIotlbType)9 }.IsValid());
        Assert.False(new VhostUserIotlbMessage { Type = VhostIotlbType.Update, Size = 0 }.IsValid());
        var config = new VhostUserShmemConfig { RegionCount = 1 };
        config.MemorySizes[3] = 0x10000;
        Assert.True(config.IsValid());
        config.RegionCount = 2;
        Assert.False(config.IsValid());
        Assert.True(new VhostUserInflightSplitQueue { Version = 1, DescriptorCount = 8 }.IsValid());
        Assert.False(new VhostUserInflightSplitQueue { Version = 2, DescriptorCount = 8 }.IsValid());
        Assert.False(new VhostUserInflightPackedQueue { Version = 1, DescriptorCount = 8, UsedWrapCounter = 2 }.IsValid());
        Assert.False(new VhostUserInflightSplitDescriptor { Inflight = 2 }.IsValid());
        Assert.True(new VhostUserInflightPackedDescriptor { Inflight = 1 }.IsValid());
    }

    [Fact]
    public void Uuid_round_trips_in_wire_order()
    {
        var guid = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        VhostUserUuid uuid = VhostUserUuid.FromGuid(guid);
        Assert.Equal(0x00, uuid[0]);
        Assert.Equal(0x11, uuid[1]);
        Assert.Equal(0xff, uuid[15]);
        Assert.Equal(guid, uuid.ToGuid());
    }
}
