using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>Batched used-ring updates (<see cref="Virtqueue.AddUsedDeferred"/> / <see cref="Virtqueue.PublishUsed"/>) and the cached avail index.</summary>
public sealed class DeferredUsedTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Fact]
    public void Split_DeferredElements_BecomeVisibleOnPublish()
    {
        using var rig = QueueRig.CreateSplit();
        ushort a = rig.Add([new(Data, 8, true)]);
        ushort b = rig.Add([new(Data + 0x100, 8, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain ca));
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain cb));
        rig.Device.AddUsedDeferred(ca.Head, 3);
        rig.Device.AddUsedDeferred(cb.Head, 5);
        Assert.False(rig.TryGetUsed(out _, out _));
        Assert.Equal(2, rig.SplitDevice.NextUsed);

        rig.Device.PublishUsed();
        Assert.True(rig.TryGetUsed(out ushort first, out uint firstLength));
        Assert.True(rig.TryGetUsed(out ushort second, out uint secondLength));
        Assert.Equal((a, 3u, b, 5u), (first, firstLength, second, secondLength));
        Assert.False(rig.TryGetUsed(out _, out _));

        rig.Device.PublishUsed(); // nothing pending: no change
        Assert.False(rig.TryGetUsed(out _, out _));
    }

    [Fact]
    public void Split_DeferredElements_ArePublished_WhenTheQueueStops()
    {
        using var rig = QueueRig.CreateSplit();
        ushort a = rig.Add([new(Data, 8, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        rig.Device.AddUsedDeferred(chain.Head, 7);
        rig.Device.Deactivate();
        Assert.True(rig.TryGetUsed(out ushort used, out uint length), "a used element added before the queue stopped was dropped");
        Assert.Equal((a, 7u), (used, length));
    }

    [Fact]
    public void Packed_AChainPoppedBeforeDeactivateAndActivate_CanStillBeAdded()
    {
        using var rig = QueueRig.CreatePacked();
        ushort a = rig.Add([new(Data, 8, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        rig.Device.Deactivate();
        rig.Device.Activate(rig.Memory);
        rig.Device.AddUsed(chain.Head, 8);
        Assert.True(rig.TryGetUsed(out ushort used, out uint length));
        Assert.Equal((a, 8u), (used, length));

        // A new position (SET_VRING_BASE) starts with nothing in flight.
        rig.Device.Deactivate();
        rig.Device.SetVringBase(rig.Device.GetVringBase());
        rig.Device.Activate(rig.Memory);
        Assert.Throws<ArgumentOutOfRangeException>(() => rig.Device.AddUsed(chain.Head, 8));
    }

    [Fact]
    public void Split_NeedsNotification_PublishesDeferredElements()
    {
        using var rig = QueueRig.CreateSplit(eventIdx: true);
        ushort a = rig.Add([new(Data, 8, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        rig.Device.AddUsedDeferred(chain.Head, 8);
        Assert.True(rig.Device.NeedsNotification());
        Assert.True(rig.TryGetUsed(out ushort head, out uint length));
        Assert.Equal((a, 8u), (head, length));
    }

    [Fact]
    public void Split_DeferredHeadOutOfRange_Throws()
    {
        using var rig = QueueRig.CreateSplit();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => rig.Device.AddUsedDeferred(8, 0));
        Assert.Equal("head", e.ParamName);
    }

    [Fact]
    public void NotReady_PublishUsedThrows()
    {
        using var queue = new SplitQueue(8);
        Assert.Throws<InvalidOperationException>(queue.PublishUsed);
        Assert.Throws<InvalidOperationException>(() => queue.AddUsedDeferred(0, 0));
    }

    [Fact]
    public void Packed_DeferredElement_IsVisibleAtOnce()
    {
        using var rig = QueueRig.CreatePacked();
        ushort a = rig.Add([new(Data, 8, true)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        rig.Device.AddUsedDeferred(chain.Head, 4);
        Assert.True(rig.TryGetUsed(out ushort head, out uint length));
        Assert.Equal((a, 4u), (head, length));
        rig.Device.PublishUsed();
        Assert.False(rig.TryGetUsed(out _, out _));
    }

    [Fact]
    public void Split_ChainsPublishedWhileABatchIsPopped_AreSeenAfterIt()
    {
        using var rig = QueueRig.CreateSplit();
        rig.Add([new(Data, 1, false)]);
        rig.Add([new(Data, 2, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out _)); // reads avail.idx = 2
        rig.Add([new(Data, 3, false)]);                        // avail.idx = 3 while one of the two is left
        Assert.True(rig.Device.TryPopDescriptorChain(out _));
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain third));
        Assert.Equal(new VirtqBuffer(Data, 3, false), Assert.Single(Collect(third)));
        Assert.False(rig.Device.TryPopDescriptorChain(out _));
    }

    [Fact]
    public void Split_AvailIndexCorruptedAfterABatch_IsStillRejected()
    {
        using var rig = QueueRig.CreateSplit();
        rig.Add([new(Data, 1, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out _));
        rig.Split!.SetAvailIndex(1 + 9); // 9 entries past the device's index, more than the queue size 8
        VirtqueueException e = rig.PopExpectingError();
        Assert.Equal(VirtqueueError.AvailIndexOutOfRange, e.Reason);
    }

    private static List<VirtqBuffer> Collect(DescriptorChain chain)
    {
        var list = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            list.Add(b);
        }

        return list;
    }
}
