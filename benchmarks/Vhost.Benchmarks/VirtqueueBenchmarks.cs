using BenchmarkDotNet.Attributes;
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

    /// <summary>Whether EVENT_IDX is negotiated.</summary>
    [Params(false, true)]
    public bool EventIdx { get; set; }

    /// <summary>Lays out a 256-entry split ring and a 256-entry packed ring in 4 MiB of memfd guest RAM.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _ram = GuestRam.Create(4 << 20, 0x100000);
        ulong data = _ram.Allocate(0x10000, 4096);
        _chain = new VirtqBuffer[DescriptorsPerChain];
        for (int i = 0; i < _chain.Length; i++)
        {
            _chain[i] = new VirtqBuffer(data + ((ulong)i * 2048), 1500, DescriptorsPerChain > 1 && i >= DescriptorsPerChain / 2);
        }

        _memory = _ram.CreateGuestMemory();
        _splitDriver = new SplitQueueDriver(_ram, 256, EventIdx);
        _split = new SplitQueue(256);
        _splitDriver.Configure(_split);
        _split.Activate(_memory);
        _packedDriver = new PackedQueueDriver(_ram, 256, EventIdx);
        _packed = new PackedQueue(256);
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
