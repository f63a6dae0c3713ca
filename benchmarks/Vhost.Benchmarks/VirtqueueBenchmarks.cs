using BenchmarkDotNet.Attributes;
using Vhost.User.Messages;
using VhostUserBackend.Iommu;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.Benchmarks;

/// <summary>
/// Pop a descriptor chain, walk its buffers and add it to the used ring, per descriptor, on
/// split and packed rings. One invocation: the guest-driver model adds 128 descriptors
/// (in chains of <see cref="DescriptorsPerChain"/>) and publishes them, the device queue pops
/// and completes every chain and makes one notification decision, and the driver reaps the
/// completions. Results are per descriptor and include the driver model's share; everything
/// runs on one thread (no cross-core cache traffic, unlike the two-thread ring probe).
/// With <see cref="Iotlb"/> the queues translate descriptor addresses through a device IOTLB
/// (VIRTIO_F_ACCESS_PLATFORM) holding one 4 KiB entry per page of the data area, as a Linux guest
/// behind a vIOMMU leaves it; every lookup hits.
/// </summary>
[MemoryDiagnoser]
public class VirtqueueBenchmarks
{
    private const int DescriptorsPerInvoke = 128;
    private GuestRam _ram = null!;
    private GuestMemory _memory = null!;
    private SplitQueueDriver _splitDriver = null!;
    private SplitQueue _split = null!;
    private PackedQueueDriver _packedDriver = null!;
    private PackedQueue _packed = null!;
    private VirtqBuffer[] _chain = [];

    /// <summary>Descriptors per chain (1: one readable buffer; 4: two readable, two writable).</summary>
    [Params(1, 4)]
    public int DescriptorsPerChain { get; set; }

    /// <summary>Whether descriptor addresses are IOVAs translated through a device IOTLB (every lookup a hit).</summary>
    [Params(false, true)]
    public bool Iotlb { get; set; }

    /// <summary>Whether EVENT_IDX is negotiated.</summary>
    [Params(false, true)]
    public bool EventIdx { get; set; }

    /// <summary>Lays out a 256-entry split ring and a 256-entry packed ring in 4 MiB of memfd guest RAM.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _ram = GuestRam.Create(4 << 20, 0x100000);
        ulong data = _ram.Allocate(0x10000, 4096);
        const ulong IovaOffset = 0x1_0000_0000;
        Iotlb? iotlb = null;
        if (Iotlb)
        {
            // 4 KiB entries over 8 MiB of IOVA space (the data area's 16 pages among them): the
            // binary search has 2048 entries to go through, DPDK's cache size.
            iotlb = new Iotlb();
            for (ulong page = 0; page < VhostUserBackend.Iommu.Iotlb.Capacity; page++)
            {
                ulong offset = (data - _ram.Regions[0].GuestPhysicalAddress + (page * 4096)) % (4 << 20);
                iotlb.Update(IovaOffset + data + (page * 4096), 4096, _ram.Regions[0].UserAddress + offset, VhostIotlbAccess.ReadWrite);
            }
        }

        _chain = new VirtqBuffer[DescriptorsPerChain];
        for (int i = 0; i < _chain.Length; i++)
        {
            _chain[i] = new VirtqBuffer((Iotlb ? IovaOffset : 0) + data + ((ulong)i * 2048), 1500, DescriptorsPerChain > 1 && i >= DescriptorsPerChain / 2);
        }

        _memory = _ram.CreateGuestMemory();
        _splitDriver = new SplitQueueDriver(_ram, 256, EventIdx);
        _split = new SplitQueue(256) { Iotlb = iotlb };
        _splitDriver.Configure(_split);
        _split.Activate(_memory);
        _packedDriver = new PackedQueueDriver(_ram, 256, EventIdx);
        _packed = new PackedQueue(256) { Iotlb = iotlb };
        _packedDriver.Configure(_packed);
        _packed.Activate(_memory);
    }

    /// <summary>Releases the queues and the RAM.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _split.Dispose();
        _packed.Dispose();
        _memory.Dispose();
        _ram.Dispose();
    }

    /// <summary>Split ring: add + publish, pop + walk + add used, notify decision, reap.</summary>
    /// <returns>Bytes described by the popped chains (keeps the walk alive).</returns>
    [Benchmark(OperationsPerInvoke = DescriptorsPerInvoke)]
    public long Split()
    {
        for (int i = 0; i < DescriptorsPerInvoke; i += DescriptorsPerChain)
        {
            _splitDriver.AddBuffers(_chain);
        }

        _splitDriver.Publish();
        long bytes = 0;
        while (_split.TryPopDescriptorChain(out DescriptorChain chain))
        {
            uint written = 0;
            foreach (VirtqBuffer buffer in chain)
            {
                bytes += buffer.Length;
                if (buffer.IsWriteOnly)
                {
                    written += buffer.Length;
                }
            }

            _split.AddUsed(chain.Head, written);
        }

        _split.NeedsNotification();
        while (_splitDriver.TryGetUsed(out _, out _))
        {
        }

        return bytes;
    }

    /// <summary>Packed ring: add (publishes per chain), pop + walk + add used, notify decision, reap.</summary>
    /// <returns>Bytes described by the popped chains.</returns>
    [Benchmark(OperationsPerInvoke = DescriptorsPerInvoke)]
    public long Packed()
    {
        for (int i = 0; i < DescriptorsPerInvoke; i += DescriptorsPerChain)
        {
            _packedDriver.AddBuffers(_chain);
        }

        long bytes = 0;
        while (_packed.TryPopDescriptorChain(out DescriptorChain chain))
        {
            uint written = 0;
            foreach (VirtqBuffer buffer in chain)
            {
                bytes += buffer.Length;
                if (buffer.IsWriteOnly)
                {
                    written += buffer.Length;
                }
            }

            _packed.AddUsed(chain.Head, written);
        }

        _packed.NeedsNotification();
        while (_packedDriver.TryGetUsed(out _, out _))
        {
        }

        return bytes;
    }
}
