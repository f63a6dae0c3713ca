using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vhost.User.Messages;

namespace Vhost.Tests.User.Messages;

public sealed class LayoutTests
{
    /// <summary>Every wire struct: its size and each field's offset, from the vhost-user spec.</summary>
    public static readonly TheoryData<Type, int, string> Layouts = new()
    {
        { typeof(VhostUserHeader), 12, "Request@0 Flags@4 Size@8" },
        { typeof(VhostUserU64), 8, "Value@0" },
        { typeof(VhostUserVringState), 8, "Index@0 Num@4" },
        { typeof(VhostUserVringAddress), 40, "Index@0 Flags@4 DescriptorTableAddress@8 UsedRingAddress@16 AvailableRingAddress@24 LogAddress@32" },
        { typeof(VhostUserMemoryHeader), 8, "RegionCount@0 Padding@4" },
        { typeof(VhostUserMemoryRegion), 32, "GuestPhysicalAddress@0 MemorySize@8 UserAddress@16 MmapOffset@24" },
        { typeof(VhostUserSingleMemoryRegion), 40, "Padding@0 Region@8" },
        { typeof(VhostUserLog), 16, "MmapSize@0 MmapOffset@8" },
        { typeof(VhostUserConfigHeader), 12, "Offset@0 Size@4 Flags@8" },
        { typeof(VhostUserInflight), 24, "MmapSize@0 MmapOffset@8 QueueCount@16 QueueSize@18" },
        { typeof(VhostUserIotlbMessage), 32, "Iova@0 Size@8 UserAddress@16 Permission@24 Type@25" },
        { typeof(VhostUserUuid), 16, "" },
        { typeof(VhostUserSharedObject), 16, "Uuid@0" },
        { typeof(VhostUserDeviceStateTransfer), 8, "Direction@0 Phase@4" },
        { typeof(VhostUserVringArea), 24, "IndexAndFlags@0 Size@8 Offset@16" },
        { typeof(VhostUserShmemMap), 40, "ShmemId@0 FdOffset@8 ShmemOffset@16 Length@24 Flags@32" },
        { typeof(VhostUserShmemRegionSizes), 2048, "" },
        { typeof(VhostUserShmemConfig), 2056, "RegionCount@0 Padding@4 MemorySizes@8" },
        { typeof(VhostUserInflightSplitDescriptor), 16, "Inflight@0 Next@6 Counter@8" },
        { typeof(VhostUserInflightSplitQueue), 16, "Features@0 Version@8 DescriptorCount@10 LastBatchHead@12 UsedIndex@14" },
        { typeof(VhostUserInflightPackedDescriptor), 32, "Inflight@0 Next@2 Last@4 Num@6 Counter@8 Id@16 Flags@18 Length@20 Address@24" },
        { typeof(VhostUserInflightPackedQueue), 32, "Features@0 Version@8 DescriptorCount@10 FreeHead@12 OldFreeHead@14 UsedIndex@16 OldUsedIndex@18 UsedWrapCounter@20 OldUsedWrapCounter@21" },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Struct_has_the_spec_size_and_offsets(Type type, int size, string offsets)
    {
        int actual = (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;
        Assert.Equal(size, actual);
        var fields = type.GetFields(BindingFlags.Public | BindingFlags.Instance);
        var expected = offsets.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expected.Length, fields.Length);
        foreach (string item in expected)
        {
            string[] parts = item.Split('@');
            Assert.Equal(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), (int)Marshal.OffsetOf(type, parts[0]));
        }
    }

    [Fact]
    public void Every_wire_struct_has_a_layout_row()
    {
        var covered = Layouts.Select(row => (Type)row.Data.Item1).ToHashSet();
        var structs = typeof(VhostUserHeader).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(VhostUserHeader).Namespace && t.IsValueType && !t.IsEnum && t.IsPublic)
            .ToList();
        Assert.NotEmpty(structs);
        Assert.All(structs, t => Assert.Contains(t, covered));
    }

    [Fact]
    public void Inflight_queue_regions_have_no_trailing_field()
    {
        // The descriptor array starts right after the header: rust-vmm's stray trailing u64 is absent.
        Assert.Equal(16 + (16 * 256), VhostUserInflightSplitQueue.RegionSize(256));
        Assert.Equal(32 + (32 * 256), VhostUserInflightPackedQueue.RegionSize(256));
    }

    [Fact]
    public void Protocol_feature_bits_match_the_spec()
    {
        Assert.Equal(1UL << 3, (ulong)VhostUserProtocolFeatures.ReplyAck);
        Assert.Equal(1UL << 15, (ulong)VhostUserProtocolFeatures.ConfigureMemorySlots);
        Assert.Equal(1UL << 19, (ulong)VhostUserProtocolFeatures.DeviceState);
        Assert.Equal(1UL << 20, (ulong)VhostUserProtocolFeatures.GetVringBaseInflight);
        Assert.Equal(1UL << 21, (ulong)VhostUserProtocolFeatures.GpaAddresses);
        Assert.Equal(1UL << 22, (ulong)VhostUserProtocolFeatures.Shmem);
        Assert.Equal(1UL << 23, (ulong)VhostUserProtocolFeatures.GetVringBaseSkipDrain);
        Assert.Equal(24, Enum.GetValues<VhostUserProtocolFeatures>().Count(v => v != 0 && ((ulong)v & ((ulong)v - 1)) == 0));
    }

    [Fact]
    public void Request_codes_cover_the_spec()
    {
        Assert.Equal(Enumerable.Range(1, 45).Select(i => (uint)i), Enum.GetValues<FrontendRequest>().Select(v => (uint)v).Order());
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (uint)i), Enum.GetValues<BackendRequest>().Select(v => (uint)v).Order());
        Assert.Equal(42u, (uint)FrontendRequest.SetDeviceStateFd);
        Assert.Equal(44u, (uint)FrontendRequest.GetShmemConfig);
        Assert.Equal(45u, (uint)FrontendRequest.GetVringBaseSkipDrain);
        Assert.Equal(21u, (uint)FrontendRequest.SetBackendReqFd);
    }
}
