using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.Virtio;

namespace Vhost.Kernel;

/// <summary>
/// A frontend for an in-kernel vhost device (<c>/dev/vhost-net</c>, <c>/dev/vhost-vsock</c>,
/// <c>/dev/vhost-scsi</c>, and the base of <c>/dev/vhost-vdpa-N</c>): every
/// <see cref="IVhostBackend"/> call is the matching <c>VHOST_*</c> ioctl on the device fd.
/// </summary>
/// <remarks>
/// <para>
/// The memory table given to <see cref="SetMemoryTable"/> is the guest memory description: its
/// regions (guest physical address, size, user address of the VMM's mapping) are what
/// <see cref="SetVringAddress"/> translates ring addresses through, and what it checks that the rings
/// lie in, before any ioctl. Region fds and mmap offsets are not used by kernel vhost (the kernel
/// reads the VMM's own mapping).
/// </para>
/// <para>
/// Errors: argument errors throw the <see cref="ArgumentException"/> family before any ioctl; a
/// refused ioctl throws <see cref="VhostException"/> with its errno and ioctl name. <c>ENOTTY</c>
/// (the fd is not this kind of vhost device, or the kernel lacks the ioctl) carries a detail that
/// says so. Thread-safe: the kernel serialises the ioctls, and the recorded memory table is locked.
/// Dispose closes the device fd, which stops the device.
/// </para>
/// </remarks>
public abstract class VhostKernelBackend : IVhostBackend, IDisposable
{
    /// <summary>The largest virtqueue size (<c>2^15</c>, the virtio limit for split rings).</summary>
    public const int MaxQueueSize = 32768;

    private readonly Lock _lock = new();
    private readonly SafeFileHandle _device;
    private MemoryRange[] _memory = [];
    private VhostBackendFeatures _ackedBackendFeatures;
    private bool _disposed;

    /// <summary>Wraps an open vhost device fd, taking ownership of it.</summary>
    /// <param name="device">The fd of the opened device node; disposed with this object.</param>
    /// <param name="deviceKind">A short name for messages, e.g. <c>vhost-net</c>.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    private protected VhostKernelBackend(SafeFileHandle device, string deviceKind)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.IsInvalid || device.IsClosed)
        {
            throw new ArgumentException("the device handle is closed or invalid", nameof(device));
        }

        _device = device;
        DeviceKind = deviceKind;
    }

    /// <summary>The device fd (owned by this object).</summary>
    public SafeFileHandle Handle => _device;

    /// <summary>A short name of the device kind, used in error messages (<c>vhost-net</c>, <c>vhost-vdpa</c>, ...).</summary>
    public string DeviceKind { get; }

    /// <summary>The backend features last acked with <see cref="SetBackendFeatures"/>.</summary>
    public VhostBackendFeatures AckedBackendFeatures => _ackedBackendFeatures;

    /// <summary>The guest memory regions last set with <see cref="SetMemoryTable"/> (guest physical address, size, user address).</summary>
    public IReadOnlyList<(ulong GuestPhysicalAddress, ulong Size, ulong UserAddress)> MemoryTable
    {
        get
        {
            lock (_lock)
            {
                return Array.ConvertAll(_memory, m => (m.GuestPhysicalAddress, m.Size, m.UserAddress));
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_GET_FEATURES</c>.</remarks>
    public ulong GetFeatures()
    {
        return IoctlGet<ulong>(VhostIoctls.VHOST_GET_FEATURES, nameof(VhostIoctls.VHOST_GET_FEATURES));
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_FEATURES</c>; the kernel refuses bits it does not offer with <c>EOPNOTSUPP</c>.</remarks>
    public void SetFeatures(ulong features)
    {
        Ioctl(VhostIoctls.VHOST_SET_FEATURES, ref features, nameof(VhostIoctls.VHOST_SET_FEATURES));
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_OWNER</c>: binds the device to this process's memory (<c>EBUSY</c> when already owned).</remarks>
    public void SetOwner() => IoctlNone(VhostIoctls.VHOST_SET_OWNER, nameof(VhostIoctls.VHOST_SET_OWNER));

    /// <inheritdoc/>
    /// <remarks><c>VHOST_RESET_OWNER</c>: stops the device and forgets its memory table and rings.</remarks>
    public void ResetOwner()
    {
        IoctlNone(VhostIoctls.VHOST_RESET_OWNER, nameof(VhostIoctls.VHOST_RESET_OWNER));
        lock (_lock)
        {
            _memory = [];
        }
    }

    /// <summary>
    /// Sets the guest memory table (<c>VHOST_SET_MEM_TABLE</c>) and records it as the guest memory
    /// description that ring addresses are translated through.
    /// </summary>
    /// <param name="regions">
    /// The regions: guest physical address, size and the VMM's user address of each
    /// (<see cref="VhostMemoryRegionInfo.Fd"/> and <see cref="VhostMemoryRegionInfo.MmapOffset"/> are not used).
    /// </param>
    /// <exception cref="ArgumentException">No regions; a region is empty, wraps around, or overlaps another.</exception>
    /// <exception cref="VhostException">The kernel refused the table (for example <c>E2BIG</c>: more regions than its <c>max_mem_regions</c>).</exception>
    public virtual void SetMemoryTable(IReadOnlyList<VhostMemoryRegionInfo> regions)
    {
        MemoryRange[] table = ValidateMemoryTable(regions);
        int size = Marshal.SizeOf<Interop.vhost_memory>() + (table.Length * Marshal.SizeOf<Interop.vhost_memory_region>());
        byte[] buffer = new byte[size];
        MemoryMarshal.Write(buffer, new Interop.vhost_memory { nregions = (uint)table.Length });
        Span<Interop.vhost_memory_region> entries = MemoryMarshal.Cast<byte, Interop.vhost_memory_region>(buffer.AsSpan(Marshal.SizeOf<Interop.vhost_memory>()));
        for (int i = 0; i < table.Length; i++)
        {
            entries[i] = new Interop.vhost_memory_region
            {
                guest_phys_addr = table[i].GuestPhysicalAddress,
                memory_size = table[i].Size,
                userspace_addr = table[i].UserAddress,
            };
        }

        unsafe
        {
            // SAFETY: the buffer is pinned for the call and holds the header plus nregions entries.
            fixed (byte* p = buffer)
            {
                Ioctl(VhostIoctls.VHOST_SET_MEM_TABLE, p, nameof(VhostIoctls.VHOST_SET_MEM_TABLE));
            }
        }

        RecordMemoryTable(table);
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_LOG_BASE</c> with <paramref name="baseAddress"/>, the user address of the log bitmap; <paramref name="region"/> is not used by kernel vhost.</remarks>
    public virtual void SetLogBase(ulong baseAddress, VhostDirtyLogRegion? region)
    {
        Ioctl(VhostIoctls.VHOST_SET_LOG_BASE, ref baseAddress, nameof(VhostIoctls.VHOST_SET_LOG_BASE));
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_LOG_FD</c>.</remarks>
    public virtual void SetLogFd(SafeHandle fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            int raw = (int)fd.DangerousGetHandle();
            Ioctl(VhostIoctls.VHOST_SET_LOG_FD, ref raw, nameof(VhostIoctls.VHOST_SET_LOG_FD));
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_VRING_NUM</c>.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">A negative queue index, or a size that is zero, not a power of two, or above <see cref="MaxQueueSize"/>.</exception>
    public void SetVringNum(int queueIndex, ushort num)
    {
        CheckQueueIndex(queueIndex);
        CheckQueueSize(num, MaxQueueSize, nameof(num));
        SetVringState(VhostIoctls.VHOST_SET_VRING_NUM, nameof(VhostIoctls.VHOST_SET_VRING_NUM), queueIndex, num);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// <c>VHOST_SET_VRING_ADDR</c>. Kernel vhost: the descriptor table, available and used rings are
    /// guest physical addresses, checked to lie wholly inside one region of the memory table and
    /// translated to the VMM's user addresses; the log address stays a guest physical address.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">A negative queue index, or a bad queue size.</exception>
    /// <exception cref="ArgumentException">Misaligned rings, a log flag without a log address (or the reverse), or a ring outside guest memory.</exception>
    /// <exception cref="InvalidOperationException">No memory table was set.</exception>
    public void SetVringAddress(int queueIndex, in VringConfigData config)
    {
        CheckQueueIndex(queueIndex);
        ValidateRingLayout(config);
        var addr = new Interop.vhost_vring_addr
        {
            index = (uint)queueIndex,
            flags = (config.Flags & VringFlags.Log) != 0 ? 1u << Interop.VHOST_VRING_F_LOG : 0,
            desc_user_addr = TranslateRingAddress(config.DescriptorTableAddress, SplitRingLayout.DescriptorTableSize(config.QueueSize), "descriptor table"),
            avail_user_addr = TranslateRingAddress(config.AvailableRingAddress, SplitRingLayout.AvailableRingSize(config.QueueSize), "available ring"),
            used_user_addr = TranslateRingAddress(config.UsedRingAddress, SplitRingLayout.UsedRingSize(config.QueueSize), "used ring"),
            log_guest_addr = config.LogAddress ?? 0,
        };
        Ioctl(VhostIoctls.VHOST_SET_VRING_ADDR, ref addr, nameof(VhostIoctls.VHOST_SET_VRING_ADDR));
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_VRING_BASE</c>.</remarks>
    public void SetVringBase(int queueIndex, uint baseValue)
    {
        CheckQueueIndex(queueIndex);
        SetVringState(VhostIoctls.VHOST_SET_VRING_BASE, nameof(VhostIoctls.VHOST_SET_VRING_BASE), queueIndex, baseValue);
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_GET_VRING_BASE</c>.</remarks>
    public uint GetVringBase(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        return GetVringState(VhostIoctls.VHOST_GET_VRING_BASE, nameof(VhostIoctls.VHOST_GET_VRING_BASE), queueIndex, 0);
    }

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_VRING_KICK</c>; <see langword="null"/> unbinds.</remarks>
    public void SetVringKick(int queueIndex, EventFd? fd) => SetVringFile(VhostIoctls.VHOST_SET_VRING_KICK, nameof(VhostIoctls.VHOST_SET_VRING_KICK), queueIndex, fd);

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_VRING_CALL</c>; <see langword="null"/> unbinds.</remarks>
    public void SetVringCall(int queueIndex, EventFd? fd) => SetVringFile(VhostIoctls.VHOST_SET_VRING_CALL, nameof(VhostIoctls.VHOST_SET_VRING_CALL), queueIndex, fd);

    /// <inheritdoc/>
    /// <remarks><c>VHOST_SET_VRING_ERR</c>; <see langword="null"/> unbinds.</remarks>
    public void SetVringError(int queueIndex, EventFd? fd) => SetVringFile(VhostIoctls.VHOST_SET_VRING_ERR, nameof(VhostIoctls.VHOST_SET_VRING_ERR), queueIndex, fd);

    /// <summary>Reads the backend features the device offers (<c>VHOST_GET_BACKEND_FEATURES</c>).</summary>
    /// <returns>The offered features.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public VhostBackendFeatures GetBackendFeatures()
    {
        return (VhostBackendFeatures)IoctlGet<ulong>(VhostIoctls.VHOST_GET_BACKEND_FEATURES, nameof(VhostIoctls.VHOST_GET_BACKEND_FEATURES));
    }

    /// <summary>Acks backend features (<c>VHOST_SET_BACKEND_FEATURES</c>); <see cref="AckedBackendFeatures"/> follows.</summary>
    /// <param name="features">The features to ack (a subset of <see cref="GetBackendFeatures"/>).</param>
    /// <exception cref="VhostException">The kernel refused them (<c>EOPNOTSUPP</c> for bits it does not offer).</exception>
    public void SetBackendFeatures(VhostBackendFeatures features)
    {
        ulong value = (ulong)features;
        Ioctl(VhostIoctls.VHOST_SET_BACKEND_FEATURES, ref value, nameof(VhostIoctls.VHOST_SET_BACKEND_FEATURES));

        _ackedBackendFeatures = features;
    }

    /// <summary>Sets the byte order of a legacy vring (<c>VHOST_SET_VRING_ENDIAN</c>; only while the ring is stopped).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="endianness">The byte order.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative queue index or an undefined value.</exception>
    /// <exception cref="VhostException"><c>ENOTTY</c> when the kernel is built without <c>CONFIG_VHOST_CROSS_ENDIAN_LEGACY</c>; <c>EBUSY</c> while the ring runs.</exception>
    public void SetVringEndianness(int queueIndex, VringEndianness endianness)
    {
        CheckQueueIndex(queueIndex);
        if (!Enum.IsDefined(endianness))
        {
            throw new ArgumentOutOfRangeException(nameof(endianness), endianness, "not a vring byte order");
        }

        SetVringState(VhostIoctls.VHOST_SET_VRING_ENDIAN, nameof(VhostIoctls.VHOST_SET_VRING_ENDIAN), queueIndex, (uint)endianness, CrossEndianDetail);
    }

    /// <summary>Reads the byte order of a legacy vring (<c>VHOST_GET_VRING_ENDIAN</c>).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The byte order.</returns>
    /// <exception cref="VhostException"><c>ENOTTY</c> when the kernel is built without <c>CONFIG_VHOST_CROSS_ENDIAN_LEGACY</c>.</exception>
    public VringEndianness GetVringEndianness(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        return (VringEndianness)GetVringState(VhostIoctls.VHOST_GET_VRING_ENDIAN, nameof(VhostIoctls.VHOST_GET_VRING_ENDIAN), queueIndex, 0, CrossEndianDetail);
    }

    /// <summary>Sets how long the device busy-polls a queue before sleeping (<c>VHOST_SET_VRING_BUSYLOOP_TIMEOUT</c>; 0 disables).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="microseconds">The timeout in microseconds.</param>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public void SetVringBusyLoopTimeout(int queueIndex, uint microseconds)
    {
        CheckQueueIndex(queueIndex);
        SetVringState(VhostIoctls.VHOST_SET_VRING_BUSYLOOP_TIMEOUT, nameof(VhostIoctls.VHOST_SET_VRING_BUSYLOOP_TIMEOUT), queueIndex, microseconds);
    }

    /// <summary>Reads a queue's busy-poll timeout (<c>VHOST_GET_VRING_BUSYLOOP_TIMEOUT</c>).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The timeout in microseconds.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public uint GetVringBusyLoopTimeout(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        return GetVringState(VhostIoctls.VHOST_GET_VRING_BUSYLOOP_TIMEOUT, nameof(VhostIoctls.VHOST_GET_VRING_BUSYLOOP_TIMEOUT), queueIndex, 0);
    }

    /// <summary>Creates a vhost worker thread (<c>VHOST_NEW_WORKER</c>, Linux 6.4+).</summary>
    /// <returns>The new worker's id.</returns>
    /// <exception cref="VhostException"><c>ENOTTY</c>: not supported by this kernel or device.</exception>
    public uint CreateWorker()
    {
        var state = default(Interop.vhost_worker_state);
        Ioctl(VhostIoctls.VHOST_NEW_WORKER, ref state, nameof(VhostIoctls.VHOST_NEW_WORKER), WorkerDetail);

        return state.worker_id;
    }

    /// <summary>Frees a worker created with <see cref="CreateWorker"/> (<c>VHOST_FREE_WORKER</c>; <c>EBUSY</c> while a queue uses it).</summary>
    /// <param name="workerId">The worker.</param>
    /// <exception cref="VhostException"><c>ENOTTY</c>: not supported by this kernel or device; <c>EINVAL</c>/<c>EBUSY</c> from the kernel.</exception>
    public void FreeWorker(uint workerId)
    {
        var state = new Interop.vhost_worker_state { worker_id = workerId };
        Ioctl(VhostIoctls.VHOST_FREE_WORKER, ref state, nameof(VhostIoctls.VHOST_FREE_WORKER), WorkerDetail);
    }

    /// <summary>Makes a worker serve a queue (<c>VHOST_ATTACH_VRING_WORKER</c>).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="workerId">The worker.</param>
    /// <exception cref="VhostException"><c>ENOTTY</c>: not supported by this kernel or device.</exception>
    public void AttachVringWorker(int queueIndex, uint workerId)
    {
        CheckQueueIndex(queueIndex);
        var w = new Interop.vhost_vring_worker { index = (uint)queueIndex, worker_id = workerId };
        Ioctl(VhostIoctls.VHOST_ATTACH_VRING_WORKER, ref w, nameof(VhostIoctls.VHOST_ATTACH_VRING_WORKER), WorkerDetail);
    }

    /// <summary>Reads which worker serves a queue (<c>VHOST_GET_VRING_WORKER</c>).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The worker id.</returns>
    /// <exception cref="VhostException"><c>ENOTTY</c>: not supported by this kernel or device.</exception>
    public uint GetVringWorker(int queueIndex)
    {
        CheckQueueIndex(queueIndex);
        var w = new Interop.vhost_vring_worker { index = (uint)queueIndex };
        Ioctl(VhostIoctls.VHOST_GET_VRING_WORKER, ref w, nameof(VhostIoctls.VHOST_GET_VRING_WORKER), WorkerDetail);

        return w.worker_id;
    }

    /// <summary>Closes the device fd (the kernel stops the device and releases its memory).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the device fd.</summary>
    /// <param name="disposing">Whether called from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (disposing)
        {
            _device.Dispose();
        }
    }

    /// <summary>Opens a device node read-write, close-on-exec.</summary>
    /// <param name="path">The node, e.g. <c>/dev/vhost-net</c>.</param>
    /// <param name="module">The kernel module that provides it, for the error message.</param>
    /// <returns>The owned fd.</returns>
    /// <exception cref="VhostException">The open failed (<c>ENOENT</c> when the module is not loaded, <c>EACCES</c>, ...).</exception>
    private protected static SafeFileHandle OpenDevice(string path, string module)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            return Fd.Open(path, Interop.O_RDWR);
        }
        catch (VhostException e) when (e.Errno == Errno.ENOENT)
        {
            throw new VhostException(Errno.ENOENT, "open", $"{path} does not exist: is the {module} kernel module loaded?");
        }
    }

    /// <summary>Translates a ring of <paramref name="length"/> bytes at guest address <paramref name="address"/> to the address passed to SET_VRING_ADDR.</summary>
    private protected virtual ulong TranslateRingAddress(ulong address, ulong length, string what)
    {
        MemoryRange[] table;
        lock (_lock)
        {
            table = _memory;
        }

        if (table.Length == 0)
        {
            throw new InvalidOperationException($"{DeviceKind}: set the memory table before the ring addresses (the {what} is a guest physical address)");
        }

        return TranslateGuestAddress(table, address, length, what);
    }

    /// <summary>Translates a guest physical range that must lie wholly inside one region to the region's user address.</summary>
    internal static ulong TranslateGuestAddress(MemoryRange[] table, ulong address, ulong length, string what)
    {
        foreach (MemoryRange r in table)
        {
            if (address >= r.GuestPhysicalAddress && address - r.GuestPhysicalAddress <= r.Size && length <= r.Size - (address - r.GuestPhysicalAddress))
            {
                return r.UserAddress + (address - r.GuestPhysicalAddress);
            }
        }

        throw new ArgumentException(
            string.Create(CultureInfo.InvariantCulture, $"the {what} [0x{address:X}, +0x{length:X}) does not lie inside one guest memory region"),
            "config");
    }

    /// <summary>Records acked backend features without the ioctl (tests drive a non-vhost fd).</summary>
    internal void AssumeBackendFeatures(VhostBackendFeatures features) => _ackedBackendFeatures = features;

    /// <summary>Records the memory table after the device accepted it.</summary>
    internal void RecordMemoryTable(MemoryRange[] table)
    {
        lock (_lock)
        {
            _memory = table;
        }
    }

    /// <summary>Validates a memory table: at least one region, none empty, none wrapping, no overlap in guest or user addresses.</summary>
    internal static MemoryRange[] ValidateMemoryTable(IReadOnlyList<VhostMemoryRegionInfo> regions)
    {
        ArgumentNullException.ThrowIfNull(regions);
        if (regions.Count == 0)
        {
            throw new ArgumentException("the memory table needs at least one region", nameof(regions));
        }

        var table = new MemoryRange[regions.Count];
        for (int i = 0; i < table.Length; i++)
        {
            VhostMemoryRegionInfo r = regions[i];
            if (r.Size == 0)
            {
                throw new ArgumentException($"region {i} is empty", nameof(regions));
            }

            if (r.GuestPhysicalAddress > ulong.MaxValue - (r.Size - 1) || r.UserAddress > ulong.MaxValue - (r.Size - 1))
            {
                throw new ArgumentException($"region {i} wraps around the address space", nameof(regions));
            }

            if (r.UserAddress == 0)
            {
                throw new ArgumentException($"region {i} has no user address", nameof(regions));
            }

            table[i] = new MemoryRange(r.GuestPhysicalAddress, r.Size, r.UserAddress);
        }

        for (int i = 0; i < table.Length; i++)
        {
            for (int j = i + 1; j < table.Length; j++)
            {
                if (Overlap(table[i].GuestPhysicalAddress, table[i].Size, table[j].GuestPhysicalAddress, table[j].Size))
                {
                    throw new ArgumentException($"regions {i} and {j} overlap in guest physical addresses", nameof(regions));
                }
            }
        }

        return table;
    }

    /// <summary>Checks a queue index (non-negative; the kernel checks the upper bound, <c>ENOBUFS</c>).</summary>
    private protected static void CheckQueueIndex(int queueIndex) => ArgumentOutOfRangeException.ThrowIfNegative(queueIndex);

    /// <summary>Checks a queue size: non-zero, a power of two, at most <paramref name="max"/>.</summary>
    private protected static void CheckQueueSize(int size, int max, string parameter)
    {
        if (size == 0 || (size & (size - 1)) != 0 || size > max)
        {
            throw new ArgumentOutOfRangeException(parameter, size, $"a queue size is a non-zero power of two up to {max}");
        }
    }

    /// <summary>Validates a ring layout with a specific message per rule.</summary>
    internal static void ValidateRingLayout(in VringConfigData config)
    {
        int max = Math.Min((int)config.QueueMaxSize, MaxQueueSize);
        if (config.QueueMaxSize == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(config), config.QueueMaxSize, "the maximum queue size is zero");
        }

        CheckQueueSize(config.QueueSize, max, nameof(config));
        if ((config.DescriptorTableAddress & 0xF) != 0)
        {
            throw new ArgumentException("the descriptor table must be 16-byte aligned", nameof(config));
        }

        if ((config.AvailableRingAddress & 0x1) != 0)
        {
            throw new ArgumentException("the available ring must be 2-byte aligned", nameof(config));
        }

        if ((config.UsedRingAddress & 0x3) != 0)
        {
            throw new ArgumentException("the used ring must be 4-byte aligned", nameof(config));
        }

        if ((config.Flags & ~VringFlags.Log) != 0)
        {
            throw new ArgumentException($"unknown ring flags 0x{(uint)config.Flags:X}", nameof(config));
        }

        if (((config.Flags & VringFlags.Log) != 0) != config.LogAddress.HasValue)
        {
            throw new ArgumentException("a log address is given exactly when the log flag is set", nameof(config));
        }
    }

    /// <summary><c>ioctl(fd, request, arg)</c> with the ENOTTY detail.</summary>
    private protected unsafe int Ioctl(uint request, void* argument, string name, string? notSupported = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            return Fd.Ioctl(_device, request, argument, name);
        }
        catch (VhostException e) when (e.Errno == Errno.ENOTTY)
        {
            throw new VhostException(Errno.ENOTTY, "ioctl(" + name + ")", notSupported ?? $"the fd is not a {DeviceKind} device, or this kernel does not implement the ioctl");
        }
    }

    /// <summary>
    /// The one get/set ioctl shape: <paramref name="argument"/> is passed by pointer, and what the
    /// kernel writes back (an <c>_IOR</c>/<c>_IOWR</c> ioctl) is in it afterwards.
    /// </summary>
    private protected void Ioctl<T>(uint request, ref T argument, string name, string? notSupported = null)
        where T : unmanaged
    {
        unsafe
        {
            // SAFETY: argument is a ref to an unmanaged value (a local or a field of one), fixed for the call.
            fixed (T* p = &argument)
            {
                Ioctl(request, p, name, notSupported);
            }
        }
    }

    /// <summary>An ioctl that reads one value (<c>_IOR</c>) and returns it.</summary>
    private protected T IoctlGet<T>(uint request, string name, string? notSupported = null)
        where T : unmanaged
    {
        T value = default;
        Ioctl(request, ref value, name, notSupported);
        return value;
    }

    /// <summary>An ioctl without argument (<c>_IO</c>).</summary>
    private protected void IoctlNone(uint request, string name, string? notSupported = null)
    {
        unsafe
        {
            Ioctl(request, null, name, notSupported);
        }
    }

    /// <summary>An ioctl with a <c>vhost_vring_state</c> in.</summary>
    private protected void SetVringState(uint request, string name, int queueIndex, uint num, string? notSupported = null)
    {
        var state = new Interop.vhost_vring_state { index = (uint)queueIndex, num = num };
        Ioctl(request, ref state, name, notSupported);
    }

    /// <summary>An ioctl with a <c>vhost_vring_state</c> in and out; returns <c>num</c>.</summary>
    private protected uint GetVringState(uint request, string name, int queueIndex, uint num, string? notSupported = null)
    {
        var state = new Interop.vhost_vring_state { index = (uint)queueIndex, num = num };
        Ioctl(request, ref state, name, notSupported);

        return state.num;
    }

    /// <summary>An ioctl with a <c>vhost_vring_file</c> (-1 when <paramref name="fd"/> is null).</summary>
    private protected void SetVringFile(uint request, string name, int queueIndex, SafeHandle? fd)
    {
        CheckQueueIndex(queueIndex);
        bool added = false;
        try
        {
            var file = new Interop.vhost_vring_file { index = (uint)queueIndex, fd = Interop.VHOST_FILE_UNBIND };
            if (fd is not null)
            {
                fd.DangerousAddRef(ref added);
                file.fd = (int)fd.DangerousGetHandle();
            }

            Ioctl(request, ref file, name);
        }
        finally
        {
            if (added)
            {
                fd!.DangerousRelease();
            }
        }
    }

    /// <summary>An int-argument ioctl passed by pointer.</summary>
    private protected void IoctlInt(uint request, string name, int value)
    {
        Ioctl(request, ref value, name);
    }

    private static bool Overlap(ulong a, ulong aSize, ulong b, ulong bSize)
        => a <= b + (bSize - 1) && b <= a + (aSize - 1);

    private const string WorkerDetail = "vhost workers are not supported by this kernel or device (VHOST_NEW_WORKER and friends need Linux 6.4+ and a device that implements them)";
    private const string CrossEndianDetail = "cross-endian vrings are not supported by this kernel (it needs CONFIG_VHOST_CROSS_ENDIAN_LEGACY)";

    /// <summary>One guest memory region as recorded from the memory table.</summary>
    internal readonly record struct MemoryRange(ulong GuestPhysicalAddress, ulong Size, ulong UserAddress);
}
