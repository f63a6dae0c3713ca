using Vhost.Virtio;

namespace Vhost.Tests.Virtio;

/// <summary>The split-ring area sizes of VIRTIO 1.3 §2.7, computed in one place.</summary>
public sealed class SplitRingLayoutTests
{
    [Theory]
    [InlineData(1u, 16ul, 8ul, 14ul)]
    [InlineData(256u, 4096ul, 518ul, 2054ul)]
    [InlineData(32768u, 524288ul, 65542ul, 262150ul)]
    public void Areas_have_the_sizes_of_the_specification(uint size, ulong descriptors, ulong available, ulong used)
    {
        Assert.Equal(descriptors, SplitRingLayout.DescriptorTableSize(size));
        Assert.Equal(available, SplitRingLayout.AvailableRingSize(size));
        Assert.Equal(used, SplitRingLayout.UsedRingSize(size));
    }
}
