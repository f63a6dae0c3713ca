using VhostUserBackend.Testing;

namespace Vhost.Vmm;

/// <summary>
/// The VMM side of one vhost device, driven only through <see cref="IVhostBackend"/>, so the same
/// code sets up in-kernel vhost (<c>VhostNet</c>, <c>VhostVsock</c>, <c>VhostScsi</c>), vDPA
/// (<c>VhostVdpa</c>) and vhost-user (<c>VhostUserFrontend</c>): GET_FEATURES and SET_FEATURES
/// with a check of the required bits, SET_OWNER, a memory table describing <see cref="GuestRam"/>,
/// and per queue a split ring laid out in that RAM with SET_VRING_NUM, SET_VRING_BASE,
/// SET_VRING_ADDR, SET_VRING_CALL and SET_VRING_KICK; <see cref="Stop"/> ends every ring with
/// GET_VRING_BASE. Transport-specific steps (vDPA device status, vhost-user protocol features and
/// SET_VRING_ENABLE, a vhost-net tap, a vsock CID) go between these calls, on the concrete frontend.
/// </summary>
/// <remarks>
/// Owns the queues' eventfds, not the frontend or the RAM: dispose those after this device. Not
/// thread-safe: one thread sets the device up; each queue is then driven by one thread.
/// </remarks>
public sealed class VmmVhostDevice : IDisposable
{
    /// <summary>VIRTIO_RING_F_INDIRECT_DESC (bit 28).</summary>
    public const ulong IndirectDescriptorsFeature = 1UL << 28;

    /// <summary>VIRTIO_RING_F_EVENT_IDX (bit 29).</summary>
    public const ulong EventIndexFeature = 1UL << 29;

    /// <summary>VIRTIO_F_VERSION_1 (bit 32).</summary>
    public const ulong Version1Feature = 1UL << 32;

    private readonly List<VmmQueue> _queues = [];
    private ulong? _offered;
    private bool _disposed;

    /// <summary>Wraps <paramref name="backend"/>; no request is sent yet.</summary>
    /// <param name="backend">The frontend (kernel, vDPA or vhost-user); stays owned by the caller.</param>
    /// <param name="ram">The guest RAM the rings and buffers live in; stays owned by the caller.</param>
    /// <param name="ringAddresses">The address space of the transport's ring addresses.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ringAddresses"/> is not a defined value.</exception>
    public VmmVhostDevice(IVhostBackend backend, GuestRam ram, VringAddressKind ringAddresses = VringAddressKind.GuestPhysical)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(ram);
        if (!Enum.IsDefined(ringAddresses))
        {
            throw new ArgumentOutOfRangeException(nameof(ringAddresses), ringAddresses, "not a VringAddressKind");
        }

        Backend = backend;
        Ram = ram;
        RingAddresses = ringAddresses;
    }

    /// <summary>The frontend this device drives.</summary>
    public IVhostBackend Backend { get; }

    /// <summary>The guest RAM.</summary>
    public GuestRam Ram { get; }

    /// <summary>The address space of the ring addresses sent with SET_VRING_ADDR.</summary>
    public VringAddressKind RingAddresses { get; }

    /// <summary>The feature bits the device offered (0 until <see cref="GetFeatures"/> or <see cref="SetFeatures"/>).</summary>
    public ulong OfferedFeatures => _offered ?? 0;

    /// <summary>The feature bits acked with <see cref="SetFeatures"/> (0 before).</summary>
    public ulong AckedFeatures { get; private set; }

    /// <summary>Whether VIRTIO_RING_F_EVENT_IDX was acked (the rings then use used_event and avail_event).</summary>
    public bool EventIndex => (AckedFeatures & EventIndexFeature) != 0;

    /// <summary>The queues added so far, by index.</summary>
    public IReadOnlyList<VmmQueue> Queues => _queues;

    /// <summary>Reads the device's features (GET_FEATURES) and remembers them as <see cref="OfferedFeatures"/>.</summary>
    /// <returns>The offered bits.</returns>
    /// <exception cref="VhostException">The device refused or the transport broke.</exception>
    public ulong GetFeatures()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ulong offered = Backend.GetFeatures();
        _offered = offered;
        return offered;
    }

    /// <summary>Claims the device (SET_OWNER).</summary>
    /// <exception cref="VhostException">The device refused (say, another owner) or the transport broke.</exception>
    public void SetOwner()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Backend.SetOwner();
    }

    /// <summary>
    /// Acks the offered features among <paramref name="wanted"/> and <paramref name="required"/>
    /// (SET_FEATURES), reading them first with <see cref="GetFeatures"/> if that was not done.
    /// </summary>
    /// <param name="wanted">Bits to ack when offered.</param>
    /// <param name="required">Bits the device must offer; acked too.</param>
    /// <returns>The acked bits.</returns>
    /// <exception cref="NotSupportedException">The device does not offer every bit of <paramref name="required"/>; nothing was acked.</exception>
    /// <exception cref="VhostException">The device refused or the transport broke.</exception>
    public ulong SetFeatures(ulong wanted, ulong required = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ulong offered = _offered ?? GetFeatures();
        if ((offered & required) != required)
        {
            throw new NotSupportedException($"the device offers features 0x{offered:x}, without the required 0x{required & ~offered:x}");
        }

        ulong acked = offered & (wanted | required);
        Backend.SetFeatures(acked);
        AckedFeatures = acked;
        return acked;
    }

    /// <summary>Describes every region of <see cref="Ram"/> to the device (SET_MEM_TABLE; for vDPA, DMA mappings with IOVA = guest physical address).</summary>
    /// <exception cref="VhostException">The device refused or the transport broke.</exception>
    public void SetMemoryTable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Backend.SetMemoryTable(MemoryTableOf(Ram));
    }

    /// <summary>
    /// Lays out the next queue's split ring in <see cref="Ram"/> and hands it to the device:
    /// SET_VRING_NUM, SET_VRING_BASE 0, SET_VRING_ADDR, SET_VRING_CALL and SET_VRING_KICK with new
    /// eventfds. Call after <see cref="SetFeatures"/> (the ring follows the acked EVENT_IDX and
    /// INDIRECT_DESC) and <see cref="SetMemoryTable"/>.
    /// </summary>
    /// <param name="size">The queue size (a power of two up to 32768).</param>
    /// <param name="maxSize">The device's largest queue size, sent with the ring layout (default: <paramref name="size"/>).</param>
    /// <param name="maxIndirectEntries">Entries per indirect table, used when INDIRECT_DESC was acked (0: none).</param>
    /// <returns>The queue; its index is its position in <see cref="Queues"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A bad size, a maximum below it, or a negative indirect count.</exception>
    /// <exception cref="InvalidOperationException">The RAM has no room for the ring.</exception>
    /// <exception cref="VhostException">The device refused or the transport broke; the queue is not added.</exception>
    public VmmQueue AddQueue(ushort size, ushort? maxSize = null, int maxIndirectEntries = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ushort max = maxSize ?? size;
        ArgumentOutOfRangeException.ThrowIfLessThan(max, size, nameof(maxSize));
        ArgumentOutOfRangeException.ThrowIfNegative(maxIndirectEntries);
        int indirect = (AckedFeatures & IndirectDescriptorsFeature) != 0 ? maxIndirectEntries : 0;
        var driver = new SplitQueueDriver(Ram, size, EventIndex, indirect);
        int index = _queues.Count;
        var queue = new VmmQueue(index, driver, indirect);
        try
        {
            Backend.SetVringNum(index, size);
            Backend.SetVringBase(index, 0);
            Backend.SetVringAddress(index, new VringConfigData(
                max,
                size,
                VringFlags.None,
                RingAddress(driver.DescriptorTableAddress),
                RingAddress(driver.UsedRingAddress),
                RingAddress(driver.AvailRingAddress)));
            // The call eventfd first: a ring can start on SET_VRING_KICK (vhost-user without
            // protocol features has no reply to wait for), and must find its call eventfd in place.
            Backend.SetVringCall(index, queue.Call);
            Backend.SetVringKick(index, queue.Kick);
        }
        catch
        {
            queue.Dispose();
            throw;
        }

        _queues.Add(queue);
        return queue;
    }

    /// <summary>Stops every ring (GET_VRING_BASE, which stops a queue on every transport) and reads where each stopped.</summary>
    /// <returns>The next available index the device would process, per queue.</returns>
    /// <exception cref="VhostException">The device refused or the transport broke.</exception>
    public uint[] Stop()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var bases = new uint[_queues.Count];
        for (int i = 0; i < bases.Length; i++)
        {
            bases[i] = Backend.GetVringBase(i);
        }

        return bases;
    }

    /// <summary>Closes the queues' eventfds (not the frontend or the RAM). Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (VmmQueue q in _queues)
        {
            q.Dispose();
        }
    }

    /// <summary>The memory table describing every region of <paramref name="ram"/> (user addresses are the RAM's own mapping).</summary>
    /// <param name="ram">The RAM.</param>
    /// <returns>One region description per RAM region; the fd stays owned by <paramref name="ram"/>.</returns>
    public static VhostMemoryRegionInfo[] MemoryTableOf(GuestRam ram)
    {
        ArgumentNullException.ThrowIfNull(ram);
        var regions = new VhostMemoryRegionInfo[ram.Regions.Count];
        for (int i = 0; i < regions.Length; i++)
        {
            GuestRamRegion r = ram.Regions[i];
            regions[i] = new VhostMemoryRegionInfo(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset, ram.FileHandle);
        }

        return regions;
    }

    /// <summary>The front-end's user address of a guest physical address (what vhost-user ring addresses carry).</summary>
    /// <param name="ram">The RAM.</param>
    /// <param name="guestPhysicalAddress">The address.</param>
    /// <returns>The user address.</returns>
    /// <exception cref="ArgumentException">The address is not in the RAM.</exception>
    public static ulong UserAddressOf(GuestRam ram, ulong guestPhysicalAddress)
    {
        ArgumentNullException.ThrowIfNull(ram);
        foreach (GuestRamRegion r in ram.Regions)
        {
            if (guestPhysicalAddress >= r.GuestPhysicalAddress && guestPhysicalAddress - r.GuestPhysicalAddress < r.Size)
            {
                return r.UserAddress + (guestPhysicalAddress - r.GuestPhysicalAddress);
            }
        }

        throw new ArgumentException($"guest physical address 0x{guestPhysicalAddress:x} is not in guest RAM", nameof(guestPhysicalAddress));
    }

    private ulong RingAddress(ulong guestPhysicalAddress)
        => RingAddresses == VringAddressKind.FrontendVirtual ? UserAddressOf(Ram, guestPhysicalAddress) : guestPhysicalAddress;
}
