using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// A descriptor chain taken from a virtqueue by <see cref="Virtqueue.TryPopDescriptorChain"/>.
/// Enumerate it (<c>foreach (VirtqBuffer b in chain)</c>, no allocation) for its buffers:
/// device-readable ones first, then device-writable ones; indirect tables are followed.
/// Return it with <see cref="Virtqueue.AddUsed"/>(<see cref="Head"/>, bytesWritten).
/// </summary>
/// <remarks>
/// Descriptors are validated as they are enumerated: a bad one throws
/// <see cref="VirtqueueException"/> from <c>MoveNext</c> (the device then usually returns the
/// chain with length 0). A chain is valid until it is returned, or, for a split ring, until the
/// queue's memory changes (<c>StaleChain</c>).
/// </remarks>
public readonly struct DescriptorChain
{
    private readonly Virtqueue? _queue;
    private readonly GuestMemory? _memory;

    internal DescriptorChain(Virtqueue queue, ushort head, int first, ushort ringCount, int stamp, ushort epoch = 0)
    {
        _queue = queue;
        _memory = queue.Memory;
        Head = head;
        First = first;
        RingCount = ringCount;
        Stamp = stamp;
        Epoch = epoch;
    }

    /// <summary>The head descriptor index (split ring) or buffer id (packed ring): what <see cref="Virtqueue.AddUsed"/> takes.</summary>
    public ushort Head { get; }

    /// <summary>The queue the chain came from (null for a default instance).</summary>
    internal Virtqueue? Queue => _queue;

    /// <summary>
    /// The guest memory snapshot the chain was taken under: its buffers are mapped there, and stay
    /// mapped until the chain is completed, also when the front-end changes the memory table
    /// meanwhile (a device completing asynchronously writes into it).
    /// </summary>
    /// <exception cref="InvalidOperationException">A default instance (not a popped chain).</exception>
    public GuestMemory Memory => _memory ?? throw new InvalidOperationException("a default DescriptorChain has no memory: use a chain returned by TryPopDescriptorChain");

    /// <summary>The chain's memory, or null for a default instance.</summary>
    internal GuestMemory? MemoryOrNull => _memory;

    /// <summary>Packed ring: the number of ring slots the chain occupies (1 for an indirect chain). 0 for a split ring.</summary>
    public ushort RingCount { get; }

    /// <summary>Split: head index; packed: first store entry.</summary>
    internal int First { get; }

    /// <summary>Split: queue generation at pop; packed: the buffer id's serial.</summary>
    internal int Stamp { get; }

    /// <summary>The ring's activation epoch at pop (<see cref="Vring"/>): a completion from before a ring stop is recognised and dropped.</summary>
    internal ushort Epoch { get; }

    /// <summary>The same chain, stamped with the ring's activation epoch.</summary>
    internal DescriptorChain WithEpoch(ushort epoch) => new(_queue!, Head, First, RingCount, Stamp, epoch, _memory);

    private DescriptorChain(Virtqueue queue, ushort head, int first, ushort ringCount, int stamp, ushort epoch, GuestMemory? memory)
    {
        _queue = queue;
        _memory = memory;
        Head = head;
        First = first;
        RingCount = ringCount;
        Stamp = stamp;
        Epoch = epoch;
    }

    /// <summary>
    /// Hints the processor to start loading the chain's first buffer (or its indirect table) into
    /// its caches. A device that handles a burst pops the chains first, prefetches each, and then
    /// processes them: the memory latency of the burst's buffers, written by the driver on another
    /// CPU, then overlaps instead of being paid one chain at a time (what DPDK's vhost does).
    /// Only a hint: nothing is validated (enumeration still validates every descriptor), nothing is
    /// thrown, and a default, stale or foreign chain is ignored.
    /// </summary>
    /// <remarks>
    /// Use it for buffers the device reads. For a buffer the device only writes, do not: .NET has no
    /// prefetch-for-write instruction, and loading the line shared first makes the write pay a second
    /// coherence transaction (the vhost-user-net sample filling RX rings measured 30 % slower with it).
    /// </remarks>
    public void Prefetch() => _queue?.PrefetchFirstBuffer(this);

    /// <summary>
    /// The fast way to take the most common chain, a single descriptor (one buffer holding a
    /// network frame, for example): when the chain is exactly one descriptor, not an indirect
    /// table, the descriptor is copied once, validated as enumeration would validate it, and its
    /// buffer returned, without building an enumerator. Otherwise false: enumerate the chain.
    /// </summary>
    /// <param name="buffer">The chain's only buffer when true; default otherwise.</param>
    /// <returns>True for a chain of one descriptor; false for a longer or indirect chain.</returns>
    /// <exception cref="InvalidOperationException">A default chain, or the queue is not ready.</exception>
    /// <exception cref="VirtqueueException">The descriptor is invalid (the reason says how), or the chain is stale.</exception>
    public bool TryGetSingleBuffer(out VirtqBuffer buffer)
    {
        if (_queue is null)
        {
            throw new InvalidOperationException("a default DescriptorChain has no buffers");
        }

        return _queue.TryGetSingleBuffer(this, out buffer);
    }

    /// <summary>
    /// Creates a reader over the chain's device-readable buffers (see <see cref="DescriptorChainReader"/>).
    /// Walks and validates the whole chain once.
    /// </summary>
    /// <returns>The reader, positioned at the first readable byte.</returns>
    /// <exception cref="InvalidOperationException">A default chain, or the queue is not ready.</exception>
    /// <exception cref="VirtqueueException">The chain is invalid or stale (the reason says how).</exception>
    public DescriptorChainReader CreateReader() => new(this);

    /// <summary>
    /// Creates a writer over the chain's device-writable buffers, which logs what it writes in the
    /// dirty log (see <see cref="DescriptorChainWriter"/>). Walks and validates the whole chain once.
    /// </summary>
    /// <returns>The writer, positioned at the first writable byte.</returns>
    /// <exception cref="InvalidOperationException">A default chain, or the queue is not ready.</exception>
    /// <exception cref="VirtqueueException">The chain is invalid or stale, or its writable buffers add up past 2^32 - 1 bytes (<c>ChainLengthOverflow</c>).</exception>
    public DescriptorChainWriter CreateWriter() => new(this);

    /// <summary>Starts enumerating the chain's buffers.</summary>
    /// <returns>A struct enumerator.</returns>
    /// <exception cref="InvalidOperationException">A default chain, or the queue is not ready.</exception>
    /// <exception cref="VirtqueueException">The chain is stale (<c>StaleChain</c>).</exception>
    public DescriptorChainEnumerator GetEnumerator()
    {
        if (_queue is null)
        {
            throw new InvalidOperationException("a default DescriptorChain has no buffers");
        }

        return new DescriptorChainEnumerator(_queue, this);
    }
}
