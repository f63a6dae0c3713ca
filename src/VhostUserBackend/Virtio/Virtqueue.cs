using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using VhostUserBackend.Iommu;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Virtio;

/// <summary>
/// The device side of a virtqueue in guest memory: the state a vhost-user backend keeps per
/// ring (size, ring addresses, next indices, negotiated ring features) and the operations of
/// the data path (pop a descriptor chain, add a used element, notification suppression).
/// <see cref="SplitQueue"/> and <see cref="PackedQueue"/> are the two layouts.
/// </summary>
/// <remarks>
/// <para>Lifecycle: set <see cref="Size"/>, the three ring addresses (guest physical) and the
/// ring features, then <see cref="Activate"/> with a guest memory snapshot. On a memory update,
/// call <see cref="UpdateMemory"/>; <see cref="Deactivate"/> stops the queue and keeps its
/// indices (GET_VRING_BASE), <see cref="Reset"/> clears them.</para>
/// <para>Not thread-safe: one worker thread owns a queue. Everything read from the ring is
/// treated as hostile: errors surface as <see cref="VirtqueueException"/> and never as an
/// access outside the guest memory mappings. The data path allocates nothing.</para>
/// <para>Inflight tracking hooks: <see cref="TryPopDescriptorChain"/> returns the head (split) or
/// buffer id (packed), <see cref="AddUsed"/> takes it back, and <see cref="GetVringBase"/> /
/// <see cref="SetVringBase"/> save and restore the ring position.</para>
/// </remarks>
public abstract unsafe class Virtqueue : IDisposable
{
    /// <summary>The largest queue size virtio allows (2^15).</summary>
    public const ushort MaxQueueSizeLimit = 32768;

    private GuestMemory? _memory;
    private ushort _size;
    private ulong _descriptorTableAddress;
    private ulong _driverAreaAddress;
    private ulong _deviceAreaAddress;
    private bool _eventIdx;
    private bool _indirect;
    private bool _logRing;
    private ulong _ringLogAddress;
    private Iotlb? _iotlb;

    /// <summary>Creates a queue that accepts sizes up to <paramref name="maxSize"/>.</summary>
    private protected Virtqueue(ushort maxSize)
    {
        if (maxSize == 0 || maxSize > MaxQueueSizeLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, $"the maximum queue size must be 1..{MaxQueueSizeLimit}");
        }

        MaxSize = maxSize;
        _size = maxSize;
    }

    /// <summary>The largest size the device accepts.</summary>
    public ushort MaxSize { get; }

    /// <summary>The number of descriptors (SET_VRING_NUM). Can only change while the queue is not ready.</summary>
    /// <exception cref="VirtqueueException">Zero, above <see cref="MaxSize"/>, or not a power of two for a split ring (<c>InvalidQueueSize</c>).</exception>
    /// <exception cref="InvalidOperationException">The queue is ready.</exception>
    public ushort Size
    {
        get => _size;
        set
        {
            ThrowIfReady();
            ValidateSize(value);
            _size = value;
        }
    }

    /// <summary>Guest physical address of the descriptor table (16-byte aligned).</summary>
    public ulong DescriptorTableAddress { get => _descriptorTableAddress; set { ThrowIfReady(); _descriptorTableAddress = value; } }

    /// <summary>Guest physical address of the driver area: the available ring (split) or the driver event suppression structure (packed).</summary>
    public ulong DriverAreaAddress { get => _driverAreaAddress; set { ThrowIfReady(); _driverAreaAddress = value; } }

    /// <summary>Guest physical address of the device area: the used ring (split) or the device event suppression structure (packed).</summary>
    public ulong DeviceAreaAddress { get => _deviceAreaAddress; set { ThrowIfReady(); _deviceAreaAddress = value; } }

    /// <summary>Whether VIRTIO_RING_F_EVENT_IDX was negotiated.</summary>
    public bool EventIdx { get => _eventIdx; set { ThrowIfReady(); _eventIdx = value; } }

    /// <summary>Whether VIRTIO_RING_F_INDIRECT_DESC was negotiated.</summary>
    public bool IndirectDescriptors { get => _indirect; set { ThrowIfReady(); _indirect = value; } }

    /// <summary>
    /// Where the queue's own writes to the ring are logged while the memory has a dirty log
    /// (<c>VHOST_VRING_F_LOG</c> and <c>log_guest_addr</c> of SET_VRING_ADDR): the guest physical
    /// address of the device area (used ring) as the front-end wants it logged; descriptor-ring
    /// writes of a packed ring are logged at their own address. <see langword="null"/>: the ring's
    /// writes are not logged (buffers written through <see cref="GuestMemory"/> still are). May
    /// change while the queue is ready, from the thread that owns it.
    /// </summary>
    internal ulong? RingLogAddress
    {
        get => _logRing ? _ringLogAddress : null;
        set
        {
            _ringLogAddress = value ?? 0;
            _logRing = value.HasValue;
        }
    }

    /// <summary>
    /// VIRTIO_F_ACCESS_PLATFORM: the IOTLB descriptor addresses (buffers and indirect tables) are
    /// translated through; their <see cref="VirtqBuffer"/>s are then guest physical ranges, one
    /// descriptor giving several when its IOVAs are not contiguous in guest memory.
    /// <see langword="null"/> (the default): descriptor addresses are guest physical, and nothing
    /// is translated. The ring areas are not translated here (the caller sets guest physical ones).
    /// </summary>
    internal Iotlb? Iotlb { get => _iotlb; set { ThrowIfReady(); _iotlb = value; } }

    /// <summary>Whether the queue is activated and may be processed.</summary>
    [MemberNotNullWhen(true, nameof(Memory))]
    public bool IsReady { get; private set; }

    /// <summary>The guest memory snapshot the queue uses (null when not ready).</summary>
    public GuestMemory? Memory => _memory;

    /// <summary>Bumped whenever pointers into guest memory change; chains popped before are stale.</summary>
    internal int Generation { get; private set; }

    /// <summary>Host pointer to the descriptor table.</summary>
    internal byte* DescriptorTable { get; private set; }

    /// <summary>Host pointer to the driver area.</summary>
    private protected byte* DriverArea { get; private set; }

    /// <summary>Host pointer to the device area.</summary>
    private protected byte* DeviceArea { get; private set; }

    /// <summary>Validates the ring addresses against <paramref name="memory"/>, takes a reference on it and makes the queue ready.</summary>
    /// <param name="memory">The guest memory snapshot (the queue takes its own reference).</param>
    /// <exception cref="VirtqueueException">A ring area is misaligned, unmapped, or not in one region (<c>InvalidRingAddress</c>), or the size is invalid.</exception>
    /// <exception cref="InvalidOperationException">The queue is already ready.</exception>
    public void Activate(GuestMemory memory)
    {
        ThrowIfReady();
        ValidateSize(_size);
        Bind(memory);
        try
        {
            OnActivated();
        }
        catch
        {
            Deactivate();
            throw;
        }

        IsReady = true;
    }

    /// <summary>Switches a ready queue to a new memory snapshot (after SET_MEM_TABLE / ADD_MEM_REG / REM_MEM_REG). Chains popped earlier become stale.</summary>
    /// <param name="memory">The new snapshot (the queue takes its own reference).</param>
    /// <exception cref="VirtqueueException">The rings are not mapped by the new memory; the queue is then not ready.</exception>
    public void UpdateMemory(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!IsReady)
        {
            return;
        }

        try
        {
            Bind(memory);
        }
        catch
        {
            Deactivate();
            throw;
        }
    }

    /// <summary>
    /// Stops the queue (GET_VRING_BASE): used elements added with <see cref="AddUsedDeferred"/> are
    /// published first, then the queue is not ready, its memory released, its indices kept. Chains
    /// in flight stay in flight: activated again at the same position (the ring's memory went and
    /// came back), the queue still takes them with <see cref="AddUsed"/>.
    /// </summary>
    public void Deactivate()
    {
        if (IsReady)
        {
            PublishUsed();
        }

        IsReady = false;
        Generation++;
        DescriptorTable = null;
        DriverArea = null;
        DeviceArea = null;
        GuestMemory? old = _memory;
        _memory = null;
        old?.Release();
    }

    /// <summary>Stops the queue and returns it to its initial state (indices and wrap counters cleared, size set to the maximum).</summary>
    public void Reset()
    {
        Deactivate();
        _size = MaxSize;
        _descriptorTableAddress = _driverAreaAddress = _deviceAreaAddress = 0;
        _eventIdx = _indirect = false;
        ResetIndices();
    }

    /// <summary>Deactivates the queue.</summary>
    public void Dispose()
    {
        Deactivate();
        GC.SuppressFinalize(this);
    }

    /// <summary>Takes the next available descriptor chain.</summary>
    /// <param name="chain">The chain; enumerate it for its buffers, and return it with <see cref="AddUsed"/>(<see cref="DescriptorChain.Head"/>, ...).</param>
    /// <returns>False when the driver has made nothing new available.</returns>
    /// <exception cref="VirtqueueException">The ring holds an invalid entry (reason says which).</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public abstract bool TryPopDescriptorChain(out DescriptorChain chain);

    /// <summary>Returns a chain to the driver as used.</summary>
    /// <param name="head">The chain's <see cref="DescriptorChain.Head"/>.</param>
    /// <param name="length">The number of bytes the device wrote into the chain's writable buffers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The head is not a valid (in-flight) index.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public abstract void AddUsed(ushort head, uint length);

    /// <summary>
    /// Writes a used element without making it visible to the driver yet (split rings: the
    /// element, not <c>used.idx</c>); <see cref="PublishUsed"/> publishes every deferred element at
    /// once, so a batch costs one store to the index the driver polls instead of one per chain.
    /// Packed rings publish each element as <see cref="AddUsed"/> does.
    /// </summary>
    /// <param name="head">The chain's <see cref="DescriptorChain.Head"/>.</param>
    /// <param name="length">The number of bytes the device wrote into the chain's writable buffers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The head is not a valid (in-flight) index.</exception>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public virtual void AddUsedDeferred(ushort head, uint length) => AddUsed(head, length);

    /// <summary>Publishes the elements added with <see cref="AddUsedDeferred"/> (release store of <c>used.idx</c>); does nothing when none is pending.</summary>
    /// <exception cref="InvalidOperationException">The queue is not ready.</exception>
    public virtual void PublishUsed()
    {
    }

    /// <summary>Whether the driver wants an interrupt for the used elements added since the last call (reads the suppression field after a full fence).</summary>
    /// <returns>True when the call eventfd should be signalled.</returns>
    public abstract bool NeedsNotification();

    /// <summary>Asks the driver for kicks (used flags, or avail_event / device event suppression with EVENT_IDX).</summary>
    /// <returns>True when more buffers became available meanwhile (process them before sleeping).</returns>
    public abstract bool EnableNotification();

    /// <summary>Tells the driver not to kick (best effort; with EVENT_IDX on a split ring, it just stops moving avail_event).</summary>
    public abstract void DisableNotification();

    /// <summary>The ring position for GET_VRING_BASE (split: next avail index; packed: avail index bits 0-14, avail wrap bit 15, used index bits 16-30, used wrap bit 31).</summary>
    /// <returns>The encoded position.</returns>
    public abstract uint GetVringBase();

    /// <summary>Restores the ring position from SET_VRING_BASE (same encoding as <see cref="GetVringBase"/>). Only while not ready.</summary>
    /// <param name="value">The encoded position.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index ≥ the queue size (packed).</exception>
    /// <exception cref="InvalidOperationException">The queue is ready.</exception>
    public abstract void SetVringBase(uint value);

    /// <summary>The buffer of a chain that is exactly one descriptor (see <see cref="DescriptorChain.TryGetSingleBuffer"/>).</summary>
    /// <param name="chain">The chain.</param>
    /// <param name="buffer">The validated buffer.</param>
    /// <returns>False when the chain is more than one descriptor or goes through an indirect table.</returns>
    internal abstract bool TryGetSingleBuffer(in DescriptorChain chain, out VirtqBuffer buffer);

    /// <summary>
    /// Validates one descriptor's copy as enumeration does (no NEXT, no INDIRECT: a chain of one).
    /// With an <see cref="Iotlb"/>, false when the buffer translates to more than one guest range
    /// (the caller enumerates the chain instead).
    /// </summary>
    /// <exception cref="VirtqueueException">The buffer wraps past 2^64 or is not inside guest memory, or (IOTLB) does not translate.</exception>
    private protected bool TryValidateSoleDescriptor(ulong address, uint length, VirtqDescriptorFlags flags, out VirtqBuffer buffer)
    {
        bool writable = (flags & VirtqDescriptorFlags.Write) != 0;
        if (_iotlb is { } iotlb && length != 0)
        {
            if (address > ulong.MaxValue - (length - 1))
            {
                ThrowBufferError(VirtqueueError.BufferAddressOverflow, address, length);
            }

            ulong gpa = iotlb.Translate(_memory!, address, length, writable, out ulong run);
            buffer = run == length ? new VirtqBuffer(gpa, length, writable) : default;
            return run == length;
        }

        CheckBuffer(_memory!, address, length);
        buffer = new VirtqBuffer(address, length, writable);
        return true;
    }

    /// <summary>The buffer checks every descriptor gets (enumeration and <see cref="TryGetSingleBuffer"/>): no wrap past 2^64, entirely inside guest memory.</summary>
    /// <exception cref="VirtqueueException"><c>BufferAddressOverflow</c> or <c>BufferNotMapped</c>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CheckBuffer(GuestMemory memory, ulong address, uint length)
    {
        if (length != 0 && address > ulong.MaxValue - (length - 1))
        {
            ThrowBufferError(VirtqueueError.BufferAddressOverflow, address, length);
        }

        if (!memory.IsRangeMapped(address, length))
        {
            ThrowBufferError(VirtqueueError.BufferNotMapped, address, length);
        }
    }

    /// <summary>The error for a chain that was returned or outlived its queue's state.</summary>
    internal static VirtqueueException StaleChain(ushort head)
        => new(VirtqueueError.StaleChain, $"chain {head} was already returned, or the queue's memory or state changed since it was popped");

    [DoesNotReturn]
    private static void ThrowBufferError(VirtqueueError reason, ulong address, uint length)
        => throw new VirtqueueException(reason, reason == VirtqueueError.BufferAddressOverflow
            ? $"buffer 0x{address:x} + 0x{length:x} wraps past 2^64"
            : $"buffer [0x{address:x}, +0x{length:x}) is not inside guest memory");

    /// <summary>Prefetches the first buffer of a chain this queue handed out (a hint; see <see cref="DescriptorChain.Prefetch"/>).</summary>
    /// <param name="chain">The chain.</param>
    internal abstract void PrefetchFirstBuffer(in DescriptorChain chain);

    /// <summary>A chain for a head that a previous back-end left inflight (split rings only), to be processed again.</summary>
    /// <param name="head">The head descriptor index.</param>
    /// <returns>The chain.</returns>
    internal DescriptorChain ResubmittedChain(ushort head)
    {
        ThrowIfNotReady();
        if (this is not SplitQueue)
        {
            throw new InvalidOperationException("inflight resubmission is implemented for split rings only");
        }

        if (head >= _size)
        {
            throw new VirtqueueException(VirtqueueError.HeadIndexOutOfRange, $"inflight head {head} is outside the queue of {_size}");
        }

        return new DescriptorChain(this, head, head, 0, Generation);
    }

    /// <summary>
    /// A chain the device has not returned yet, rebuilt from its head (split: the descriptor table;
    /// packed: the queue's copies of the descriptors), so its buffers can be walked again at
    /// completion, for the dirty log. False when the head is not in flight (packed) or out of range.
    /// </summary>
    internal abstract bool TryGetInflightChain(ushort head, out DescriptorChain chain);

    /// <summary>
    /// Undoes the pop of <paramref name="chain"/>, which the caller (<see cref="Vring.Unpop"/>) checked
    /// is the most recently popped chain not yet used or put back: the ring position goes back to
    /// where that pop found it (split: one entry of the available ring; packed: the chain's
    /// <see cref="DescriptorChain.RingCount"/> descriptors, flipping the avail wrap counter when it
    /// crosses slot 0), so the next pop takes the same chain again. Works whether or not the queue is
    /// ready (a ring whose memory went away keeps its position).
    /// </summary>
    /// <param name="chain">The chain.</param>
    /// <exception cref="InvalidOperationException">The chain is not in flight in this queue.</exception>
    internal abstract void Rewind(in DescriptorChain chain);

    /// <summary>The chains in flight are abandoned (the ring stopped; a new one starts from SET_VRING_BASE): a packed queue frees its copies at the next activation.</summary>
    internal virtual void DiscardInFlight()
    {
    }

    /// <summary>Whether a queue size is valid for this layout.</summary>
    private protected abstract bool IsValidSize(ushort size);

    /// <summary>Bytes and alignment of the three areas for the current size.</summary>
    /// <summary>Bytes of the descriptor table at the current <see cref="Size"/>.</summary>
    internal ulong DescriptorTableSize => (ulong)_size * VirtqDescriptor.Size;

    /// <summary>Bytes of the driver area at the current <see cref="Size"/> (the available ring, or the driver event suppression structure).</summary>
    internal ulong DriverAreaSize
    {
        get
        {
            GetAreaLayout(out ulong size, out _, out _, out _);
            return size;
        }
    }

    /// <summary>Bytes of the device area at the current <see cref="Size"/> (the used ring, or the device event suppression structure).</summary>
    internal ulong DeviceAreaSize
    {
        get
        {
            GetAreaLayout(out _, out _, out ulong size, out _);
            return size;
        }
    }

    private protected abstract void GetAreaLayout(out ulong driverAreaSize, out ulong driverAreaAlignment, out ulong deviceAreaSize, out ulong deviceAreaAlignment);

    /// <summary>Called when the queue becomes ready (pointers are set).</summary>
    private protected virtual void OnActivated()
    {
    }

    /// <summary>Clears the indices and wrap counters.</summary>
    private protected abstract void ResetIndices();

    /// <summary>Throws <see cref="InvalidOperationException"/> unless ready.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected void ThrowIfNotReady()
    {
        if (!IsReady)
        {
            ThrowNotReady();
        }
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> when ready.</summary>
    private protected void ThrowIfReady()
    {
        if (IsReady)
        {
            throw new InvalidOperationException("the virtqueue is ready; deactivate it before changing its configuration");
        }
    }

    /// <summary>
    /// Marks a write the queue made to its device area (at <paramref name="offset"/> in it) in the
    /// dirty log, when ring logging is on. Call it after the store: a front-end that clears the
    /// bit and copies the page in between then sees the bit again.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected void LogDeviceAreaWrite(ulong offset, ulong length)
    {
        if (_logRing)
        {
            _memory!.DirtyLog?.MarkDirty(_ringLogAddress + offset, length);
        }
    }

    /// <summary>Marks a write the queue made to its descriptor ring (packed rings), after the store, when ring logging is on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected void LogDescriptorWrite(ulong offset, ulong length)
    {
        if (_logRing)
        {
            _memory!.DirtyLog?.MarkDirty(_descriptorTableAddress + offset, length);
        }
    }

    [DoesNotReturn]
    private static void ThrowNotReady() => throw new InvalidOperationException("the virtqueue is not ready");

    private void ValidateSize(ushort size)
    {
        if (size == 0 || size > MaxSize || !IsValidSize(size))
        {
            throw new VirtqueueException(VirtqueueError.InvalidQueueSize, $"queue size {size} is invalid (maximum {MaxSize}{(this is SplitQueue ? ", must be a power of two" : string.Empty)})");
        }
    }

    private void Bind(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("virtqueues are little-endian; this host is big-endian");
        }

        GetAreaLayout(out ulong driverSize, out ulong driverAlign, out ulong deviceSize, out ulong deviceAlign);
        byte* desc = Translate(memory, "descriptor table", _descriptorTableAddress, DescriptorTableSize, 16);
        byte* driver = Translate(memory, "driver area", _driverAreaAddress, driverSize, driverAlign);
        byte* device = Translate(memory, "device area", _deviceAreaAddress, deviceSize, deviceAlign);
        if (!memory.TryAddReference())
        {
            throw new ObjectDisposedException(nameof(GuestMemory), "the guest memory snapshot was already released");
        }

        GuestMemory? old = _memory;
        _memory = memory;
        DescriptorTable = desc;
        DriverArea = driver;
        DeviceArea = device;
        Generation++;
        old?.Release();
    }

    private static byte* Translate(GuestMemory memory, string what, ulong address, ulong length, ulong alignment)
    {
        if ((address & (alignment - 1)) != 0)
        {
            throw new VirtqueueException(VirtqueueError.InvalidRingAddress, $"{what} at 0x{address:x} is not {alignment}-byte aligned");
        }

        byte* p = memory.TryGetPointer(address, length);
        if (p == null)
        {
            throw new VirtqueueException(VirtqueueError.InvalidRingAddress, $"{what} [0x{address:x}, +0x{length:x}) is not inside one guest memory region");
        }

        return p;
    }
}
