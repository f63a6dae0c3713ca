using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>A driver and a device queue over one guest RAM, plus a data area for buffers.</summary>
internal sealed class QueueRig : IDisposable
{
    public const ulong RamBase = 0x100000;
    public const ulong RamSize = 4 << 20;

    private QueueRig(GuestRam ram, GuestMemory memory, Virtqueue device, SplitQueueDriver? split, PackedQueueDriver? packed)
    {
        Ram = ram;
        Memory = memory;
        Device = device;
        Split = split;
        Packed = packed;
    }

    public GuestRam Ram { get; }

    public GuestMemory Memory { get; }

    public Virtqueue Device { get; }

    public SplitQueueDriver? Split { get; }

    public PackedQueueDriver? Packed { get; }

    public SplitQueue SplitDevice => (SplitQueue)Device;

    public PackedQueue PackedDevice => (PackedQueue)Device;

    public static QueueRig CreateSplit(ushort size = 8, bool eventIdx = false, int maxIndirect = 8, GuestRam? ram = null, DirtyLog? log = null)
    {
        ram ??= GuestRam.Create(RamSize, RamBase);
        var driver = new SplitQueueDriver(ram, size, eventIdx, maxIndirect);
        var queue = new SplitQueue(Math.Max(size, (ushort)256));
        driver.Configure(queue);
        GuestMemory memory = ram.CreateGuestMemory(log);
        queue.Activate(memory);
        return new QueueRig(ram, memory, queue, driver, null);
    }

    public static QueueRig CreatePacked(ushort size = 8, bool eventIdx = false, int maxIndirect = 8, GuestRam? ram = null, DirtyLog? log = null)
    {
        ram ??= GuestRam.Create(RamSize, RamBase);
        var driver = new PackedQueueDriver(ram, size, eventIdx, maxIndirect);
        var queue = new PackedQueue(Math.Max(size, (ushort)256));
        driver.Configure(queue);
        GuestMemory memory = ram.CreateGuestMemory(log);
        queue.Activate(memory);
        return new QueueRig(ram, memory, queue, null, driver);
    }

    public bool IsPacked => Packed is not null;

    public ushort Add(ReadOnlySpan<VirtqBuffer> buffers, bool indirect = false)
    {
        if (Split is not null)
        {
            ushort head = Split.AddBuffers(buffers, indirect);
            Split.Publish();
            return head;
        }

        return Packed!.AddBuffers(buffers, indirect);
    }

    public bool TryGetUsed(out ushort head, out uint length)
        => Split is not null ? Split.TryGetUsed(out head, out length) : Packed!.TryGetUsed(out head, out length);

    public List<VirtqBuffer> PopAndCollect(out ushort head)
    {
        Assert.True(Device.TryPopDescriptorChain(out DescriptorChain chain));
        head = chain.Head;
        var list = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            list.Add(b);
        }

        return list;
    }

    public VirtqueueException PopExpectingError()
    {
        return Assert.Throws<VirtqueueException>(() =>
        {
            if (Device.TryPopDescriptorChain(out DescriptorChain chain))
            {
                foreach (VirtqBuffer b in chain)
                {
                    _ = b;
                }
            }
        });
    }

    public void Dispose()
    {
        Device.Dispose();
        Memory.Dispose();
        Ram.Dispose();
    }
}
