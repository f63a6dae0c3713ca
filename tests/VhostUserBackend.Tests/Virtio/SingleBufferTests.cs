using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>
/// <see cref="DescriptorChain.TryGetSingleBuffer"/>: a chain of one descriptor gives its buffer,
/// validated exactly as enumeration validates it; any other chain gives false and is enumerated.
/// </summary>
public sealed class SingleBufferTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void OneDescriptor_GivesItsBuffer(bool packed, bool writable)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        var expected = new VirtqBuffer(Data + 0x40, 1514, writable);
        rig.Add([expected]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        Assert.True(chain.TryGetSingleBuffer(out VirtqBuffer buffer));
        Assert.Equal(expected, buffer);
        Assert.Equal([expected], Enumerate(chain));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void LongerOrIndirectChains_GiveFalse_AndEnumerateAsBefore(bool packed, bool indirect)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        VirtqBuffer[] two = [new(Data, 12, false), new(Data + 0x100, 64, false)];
        rig.Add(two, indirect);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        Assert.False(chain.TryGetSingleBuffer(out VirtqBuffer buffer));
        Assert.Equal(default, buffer);
        Assert.Equal(two, Enumerate(chain));

        // An indirect table of one entry is not "one descriptor" either: its table is walked.
        rig.Device.AddUsed(chain.Head, 0);
        rig.Add([new(Data, 64, true)], indirect: true);
        Assert.True(rig.Device.TryPopDescriptorChain(out chain));
        Assert.False(chain.TryGetSingleBuffer(out _));
        Assert.Equal([new VirtqBuffer(Data, 64, true)], Enumerate(chain));
    }

    // The reason as its name: VirtqueueError is internal, and a theory's parameters are public.
    public static TheoryData<ulong, uint, string> HostileDescriptors => new()
    {
        { 0x1000, 16, nameof(VirtqueueError.BufferNotMapped) },                                       // below every region
        { ulong.MaxValue - 10, 100, nameof(VirtqueueError.BufferAddressOverflow) },                   // wraps past 2^64
        { QueueRig.RamBase + QueueRig.RamSize - 8, 16, nameof(VirtqueueError.BufferNotMapped) },      // straddles the end of memory
    };

    [Theory]
    [MemberData(nameof(HostileDescriptors))]
    public void HostileDescriptor_SameVerdictAsEnumeration(ulong address, uint length, string reasonName)
    {
        VirtqueueError reason = Enum.Parse<VirtqueueError>(reasonName);
        foreach (bool packed in new[] { false, true })
        {
            using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
            rig.Add([new(address, length, false)]);
            Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
            Assert.Equal(reason, Assert.Throws<VirtqueueException>(() => chain.TryGetSingleBuffer(out _)).Reason);
            Assert.Equal(reason, Assert.Throws<VirtqueueException>(() => Enumerate(chain)).Reason);
        }
    }

    [Fact]
    public void DefaultNotReadyAndStaleChains_AreRefused()
    {
        Assert.Throws<InvalidOperationException>(() => default(DescriptorChain).TryGetSingleBuffer(out _));
        Assert.Throws<InvalidOperationException>(() => default(DescriptorChain).Memory);

        using QueueRig packed = QueueRig.CreatePacked(16);
        packed.Add([new(Data, 64, false)]);
        Assert.True(packed.Device.TryPopDescriptorChain(out DescriptorChain returned));
        packed.Device.AddUsed(returned.Head, 0);
        Assert.Equal(VirtqueueError.StaleChain, Assert.Throws<VirtqueueException>(() => returned.TryGetSingleBuffer(out _)).Reason);

        using QueueRig split = QueueRig.CreateSplit(16);
        split.Add([new(Data, 64, false)]);
        Assert.True(split.Device.TryPopDescriptorChain(out DescriptorChain chain));
        split.Device.Deactivate();
        Assert.Throws<InvalidOperationException>(() => chain.TryGetSingleBuffer(out _));
    }

    [Fact]
    public void AllocatesNothing()
    {
        using QueueRig rig = QueueRig.CreateSplit(64);
        rig.Add([new(Data, 64, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        Assert.True(chain.TryGetSingleBuffer(out _));
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            chain.TryGetSingleBuffer(out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static List<VirtqBuffer> Enumerate(DescriptorChain chain)
    {
        var list = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            list.Add(b);
        }

        return list;
    }
}
