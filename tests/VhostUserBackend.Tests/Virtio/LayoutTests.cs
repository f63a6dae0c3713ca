using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

public sealed class LayoutTests
{
    public static TheoryData<Type, int, string[], int[]> Layouts => new()
    {
        { typeof(VirtqDescriptor), 16, ["Address", "Length", "Flags", "Next"], [0, 8, 12, 14] },
        { typeof(VirtqUsedElement), 8, ["Id", "Length"], [0, 4] },
        { typeof(PackedDescriptor), 16, ["Address", "Length", "Id", "Flags"], [0, 8, 12, 14] },
        { typeof(PackedEventSuppression), 4, ["OffsetAndWrap", "Flags"], [0, 2] },

        // struct iovec of <sys/uio.h> on 64-bit Linux: void *iov_base; size_t iov_len.
        { typeof(Iovec), 16, ["Base", "Length"], [0, 8] },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void WireStruct_MatchesSpec(Type type, int size, string[] fields, int[] offsets)
    {
        Assert.Equal(size, Marshal.SizeOf(type));
        Assert.Equal(size, (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!);
        Assert.Equal(fields.Order(), type.GetFields().Where(f => !f.IsStatic).Select(f => f.Name).Order());
        for (int i = 0; i < fields.Length; i++)
        {
            Assert.Equal(offsets[i], (int)Marshal.OffsetOf(type, fields[i]));
        }
    }

    [Fact]
    public void EveryWireStruct_HasALayoutRow()
    {
        var covered = Layouts.Select(row => (Type)row.Data.Item1).ToHashSet();
        var structs = typeof(VirtqDescriptor).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsEnum && t.IsPublic && t.Namespace == typeof(VirtqDescriptor).Namespace && t.IsLayoutSequential && t.StructLayoutAttribute?.Pack == 1);
        Assert.All(structs, t => Assert.Contains(t, covered));
    }

    [Fact]
    public void SizeConstants_MatchStructs()
    {
        Assert.Equal(VirtqDescriptor.Size, Unsafe.SizeOf<VirtqDescriptor>());
        Assert.Equal(VirtqUsedElement.Size, Unsafe.SizeOf<VirtqUsedElement>());
        Assert.Equal(PackedDescriptor.Size, Unsafe.SizeOf<PackedDescriptor>());
        Assert.Equal(PackedEventSuppression.Size, Unsafe.SizeOf<PackedEventSuppression>());
        Assert.Equal(PackedDescriptor.FlagsOffset, (int)Marshal.OffsetOf<PackedDescriptor>(nameof(PackedDescriptor.Flags)));
        Assert.Equal(6UL + (2 * 256), SplitQueue.AvailRingSize(256));
        Assert.Equal(6UL + (8 * 256), SplitQueue.UsedRingSize(256));
    }

    [Fact]
    public void FlagValues_MatchSpec()
    {
        Assert.Equal(1, (int)VirtqDescriptorFlags.Next);
        Assert.Equal(2, (int)VirtqDescriptorFlags.Write);
        Assert.Equal(4, (int)VirtqDescriptorFlags.Indirect);
        Assert.Equal(1 << 7, (int)VirtqDescriptorFlags.Available);
        Assert.Equal(1 << 15, (int)VirtqDescriptorFlags.Used);
        Assert.Equal(1, (int)VirtqAvailFlags.NoInterrupt);
        Assert.Equal(1, (int)VirtqUsedFlags.NoNotify);
        Assert.Equal(0, (int)PackedEventFlags.Enable);
        Assert.Equal(1, (int)PackedEventFlags.Disable);
        Assert.Equal(2, (int)PackedEventFlags.Descriptor);
    }
}
