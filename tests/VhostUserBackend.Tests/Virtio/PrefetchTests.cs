using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>
/// <see cref="DescriptorChain.Prefetch"/> and <see cref="GuestMemory.Prefetch"/> are hints: they
/// never throw, whatever the guest wrote, and they change nothing a later enumeration sees.
/// </summary>
public sealed class PrefetchTests
{
    private const ulong Data = QueueRig.RamBase + 0x200000;

    [Fact]
    public void DefaultChain_PrefetchIsIgnored()
    {
        default(DescriptorChain).Prefetch();
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Prefetch_ThenEnumerate_SeesTheSameBuffers(bool packed, bool indirect)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        VirtqBuffer[] buffers = [new(Data, 64, false), new(Data + 0x1000, 128, true)];
        ushort added = rig.Add(buffers, indirect);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        chain.Prefetch();
        chain.Prefetch();
        Assert.Equal(added, chain.Head);
        var seen = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            seen.Add(b);
        }

        Assert.Equal(buffers, seen);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnmappedBuffer_PrefetchDoesNotThrow_EnumerationStillRefuses(bool packed)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        rig.Add([new(0x7fff_0000_0000, 64, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        chain.Prefetch();
        var e = Assert.Throws<VirtqueueException>(() =>
        {
            foreach (VirtqBuffer b in chain)
            {
                _ = b;
            }
        });
        Assert.Equal(VirtqueueError.BufferNotMapped, e.Reason);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ChainOfADeactivatedOrReturnedQueue_PrefetchIsIgnored(bool packed)
    {
        using QueueRig rig = packed ? QueueRig.CreatePacked(16) : QueueRig.CreateSplit(16);
        rig.Add([new(Data, 64, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        rig.Device.AddUsed(chain.Head, 0);
        chain.Prefetch(); // returned: packed refuses the stale id, split reads its own table
        rig.Device.Deactivate();
        chain.Prefetch(); // not ready: nothing is read
    }

    [Fact]
    public void GuestMemoryPrefetch_AnyAddress_NeverThrows()
    {
        using var ram = GuestRam.Create([(0x10000, 0x2000), (0x20000, 0x1000)]);
        using GuestMemory memory = ram.CreateGuestMemory();
        foreach (ulong address in new ulong[] { 0, 0x10000, 0x11fff, 0x12000, 0x20fc0, 0x20fff, 0x21000, ulong.MaxValue })
        {
            memory.Prefetch(address);
        }
    }

    [Fact]
    public void Prefetch_AllocatesNothing()
    {
        using QueueRig rig = QueueRig.CreateSplit(64);
        rig.Add([new(Data, 64, false)]);
        Assert.True(rig.Device.TryPopDescriptorChain(out DescriptorChain chain));
        chain.Prefetch();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            chain.Prefetch();
            rig.Memory.Prefetch(Data);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
