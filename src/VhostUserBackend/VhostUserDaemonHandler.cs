using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Vdpa;
using Vhost.Virtio;
using VhostUserBackend.Config;
using VhostUserBackend.Iommu;
using VhostUserBackend.Memory;
using VhostUserBackend.Migration;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// The front-end messages of one connection applied to a device (the rust-vmm
/// <c>VhostUserHandler</c>): negotiation, guest memory through a <see cref="GuestMemoryAtomic"/>,
/// ring configuration and start/stop, dirty logging, inflight regions, config and device state.
/// Runs on the daemon's control thread; every change to a ring or to the memory pauses the
/// workers it affects. Disposing releases everything the connection created.
/// </summary>
internal sealed partial class VhostUserDaemonHandler : IVhostUserBackendRequestHandler, IDisposable
{
    private const ulong IndirectDescriptorFeature = 1UL << 28;

    private readonly IVhostUserBackend _backend;
    private readonly Vring[] _vrings;
    private readonly VhostUserWorker[] _workerOfQueue;
    private readonly VhostUserWorker[] _workers;
    private readonly ILogger _logger;
    private readonly GuestMemoryFilePolicy _memoryFilePolicy;
    private readonly GuestMemoryAtomic _memory = new();
    private readonly TimeSpan _inFlightTimeout;
    private readonly Dictionary<(ulong Address, ulong Size), int> _repeatedAdds = [];
    private readonly VhostUserNegotiation _negotiation;
    private readonly VirtioConfigSpace? _configSpace;
    private readonly ConfigChangeNotifier? _configChanges;
    private readonly DeviceStateTransfer? _deviceState;
    private readonly bool _postcopyOffered;
    private PostcopySession? _postcopy;
    private readonly Action _whilePausing;
    private readonly Iotlb _iotlb = new();
    private bool _logging;
    private DirtyLog? _log;
    private EventFd? _logEvent;
    private InflightRegion? _inflight;
    private VhostUserBackendChannel? _channel;
    private byte _status;
    private bool _disposed;

    public VhostUserDaemonHandler(IVhostUserBackend backend, Vring[] vrings, VhostUserWorker[] workerOfQueue, VhostUserWorker[] workers, VhostUserNegotiation negotiation, ILogger logger, GuestMemoryFilePolicy memoryFilePolicy = GuestMemoryFilePolicy.SealWhenPossible, TimeSpan? inFlightTimeout = null, TimeSpan? deviceStateTimeout = null, bool postcopy = false, TimeSpan? iotlbMissTimeout = null)
    {
        _postcopyOffered = postcopy;
        _whilePausing = AbandonFaultsIfFrontendLeft;
        _iotlb.MissTimeout = iotlbMissTimeout ?? _iotlb.MissTimeout;
        _iotlb.MissSender = SendIotlbMiss;
        _negotiation = negotiation;
        _inFlightTimeout = inFlightTimeout ?? TimeSpan.FromSeconds(5);
        _memoryFilePolicy = memoryFilePolicy;
        _backend = backend;
        _vrings = vrings;
        _workerOfQueue = workerOfQueue;
        _workers = workers;
        _logger = logger;
        _configSpace = backend.ConfigSpace;
        _configChanges = _configSpace is null ? null : new ConfigChangeNotifier(_configSpace, logger);
        _deviceState = backend.DeviceState is { } state ? new DeviceStateTransfer(state, deviceStateTimeout ?? TimeSpan.FromSeconds(30)) : null;
    }

    private bool ProtocolFeaturesAcked => _negotiation.ProtocolFeaturesAcked;

    private bool StatusFromFrontend => _negotiation.HasProtocolFeatures(VhostUserProtocolFeatures.Status);

    /// <summary>Whether the dirty log is applied to the memory (VHOST_F_LOG_ALL as last applied by SET_FEATURES).</summary>
    private bool LoggingAll => _logging;

    public ulong GetFeatures()
    {
        ulong features = _backend.Features | (ulong)VhostUserVirtioFeatures.ProtocolFeatures;
        if ((_backend.ProtocolFeatures & VhostUserProtocolFeatures.LogShmFd) != 0)
        {
            features |= (ulong)VhostUserVirtioFeatures.LogAll;
        }

        return features | AccessPlatformOffer;
    }

    /// <summary>SET_FEATURES: applies the features the dispatcher stored in the negotiation (it checked they were offered).</summary>
    public void SetFeatures(ulong features)
    {
        bool packed = (features & (ulong)VirtioFeatures.RingPacked) != 0;
        bool eventIdx = (features & (ulong)VirtioFeatures.RingEventIndex) != 0;
        bool wasLogging = LoggingAll;
        using (PauseAll())
        {
            ApplyAccessPlatform(features);
            foreach (Vring v in _vrings)
            {
                v.ApplyFeatures(packed, eventIdx, (features & IndirectDescriptorFeature) != 0);

                // Without VHOST_USER_F_PROTOCOL_FEATURES rings are enabled as soon as they start. QEMU
                // up to 7.2 never acks the bit for net but exchanges protocol features and drives
                // the rings with SET_VRING_ENABLE (including 0 for queue pairs the guest does not
                // use), so once protocol features were set the enable messages decide.
                if ((features & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) == 0 && !_negotiation.ProtocolFeaturesSet)
                {
                    v.IsEnabled = true;
                }
            }

            _logging = (features & (ulong)VhostUserVirtioFeatures.LogAll) != 0;
            if (wasLogging != LoggingAll)
            {
                foreach (Vring v in _vrings)
                {
                    UnpopHeldChains(v, "dirty logging changes");
                }

                _memory.SetDirtyLog(LoggingAll ? _log : null);
                RebindRings();
            }
        }

        Log.FeaturesAcked(_logger, features, eventIdx, packed);
        _backend.AcknowledgeFeatures(features);
        _backend.SetEventIndex(eventIdx);
        if (wasLogging != LoggingAll)
        {
            _backend.UpdateMemory(_memory);
        }

        DeriveStatus();

        // Logging turned off (a cancelled migration): QEMU frees its log and never says so with
        // another message, so the mapping goes now; the next migration sends a new SET_LOG_BASE.
        if (wasLogging && !LoggingAll && _log is { } unused)
        {
            _log = null;
            unused.Dispose();
        }
    }

    /// <summary>
    /// SET_OWNER opens the session; the connection is the session here, so there is nothing to
    /// record. A repeated SET_OWNER is accepted: QEMU sends one per vhost device, and a
    /// multiqueue net device is one vhost device per queue pair on one connection (DPDK and
    /// libvhost-user accept it too).
    /// </summary>
    public void SetOwner()
    {
    }

    /// <summary>
    /// RESET_OWNER is deprecated; the spec recommends that back-ends ignore it or disable every
    /// ring, and warns that discarding the session's state breaks front-ends that carry on
    /// without sending it again. Rings are disabled; memory, features and ring setup stay.
    /// </summary>
    public void ResetOwner()
    {
        using (PauseAll())
        {
            foreach (Vring v in _vrings)
            {
                v.IsEnabled = false;
            }
        }

        Log.ResetOwner(_logger);
        foreach (Vring v in _vrings)
        {
            _backend.OnVringStateChanged(v);
        }
    }

    /// <summary>The device's protocol features, with CONFIG when it has a <see cref="IVhostUserBackend.ConfigSpace"/>, DEVICE_STATE when it has a <see cref="IVhostUserBackend.DeviceState"/>, and PAGEFAULT instead of CONFIGURE_MEM_SLOTS with <see cref="VhostUserDaemonOptions.Postcopy"/>.</summary>
    public VhostUserProtocolFeatures GetProtocolFeatures()
        => WithInflightMigration(PostcopyFeatures.Apply(_backend.ProtocolFeatures, _postcopyOffered))
            | (_configSpace is null ? VhostUserProtocolFeatures.None : VhostUserProtocolFeatures.Config)
            | (_deviceState is null ? VhostUserProtocolFeatures.None : VhostUserProtocolFeatures.DeviceState);

    /// <summary>Logs why the front-end needs a protocol feature it did not get, with what to do about it on the device's side.</summary>
    void IVhostUserBackendRequestHandler.OnRequestNeedsProtocolFeature(FrontendRequest request, VhostUserProtocolFeatures missing)
    {
        string explanation = (GetProtocolFeatures() & missing) != missing
            ? (missing & VhostUserProtocolFeatures.Config) != 0
                ? "the front-end reads or writes config space but the device offers no config space: implement IVhostUserBackend.ConfigSpace"
                : (missing & VhostUserProtocolFeatures.DeviceState) != 0
                    ? "the front-end transfers device state but the device has none: implement IVhostUserBackend.DeviceState"
                    : "the device does not offer it"
            : "the device offers it, but the front-end did not ack it in SET_PROTOCOL_FEATURES";
        Log.RequestNeedsProtocolFeature(_logger, request, missing, explanation);
    }

    public void SetProtocolFeatures(VhostUserProtocolFeatures features)
    {
        CheckInflightMigrationAck(features);
        UpdateInbandChannels();
        Log.ProtocolFeaturesAcked(_logger, features);
    }

    public void SetMemoryTable(ReadOnlySpan<VhostUserMemoryRegion> regions, ReceivedFds fds)
    {
        var mapped = new List<GuestMemoryRegion>(regions.Length);
        GuestMemory next;
        try
        {
            for (int i = 0; i < regions.Length; i++)
            {
                mapped.Add(MapRegion(regions[i], fds, i));
            }

            next = GuestMemory.Create(mapped, LoggingAll ? _log : null);
        }
        catch
        {
            foreach (GuestMemoryRegion r in mapped)
            {
                r.Dispose();
            }

            throw;
        }

        UpdateMemory(() => _memory.Replace(next));
        _repeatedAdds.Clear();
    }

    public ulong GetMaxMemorySlots() => VhostUserLimits.MaxMemorySlots;

    public void AddMemoryRegion(in VhostUserMemoryRegion region, ReceivedFds fds)
    {
        if (IsRepeatOfMappedRegion(region, fds))
        {
            return;
        }

        GuestMemory current = _memory.Acquire();
        int count = current.Regions.Count;
        current.Release();
        if (count >= VhostUserLimits.MaxMemorySlots)
        {
            throw new InvalidOperationException($"ADD_MEM_REG: all {VhostUserLimits.MaxMemorySlots} memory slots are in use");
        }

        GuestMemoryRegion mapped = MapRegion(region, fds, 0);
        try
        {
            UpdateMemory(() => _memory.AddRegion(mapped));
        }
        catch (ArgumentException e)
        {
            mapped.Dispose();
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"ADD_MEM_REG: region [0x{region.GuestPhysicalAddress:x}, +0x{region.MemorySize:x}) refused: {e.Message}", e);
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An ADD_MEM_REG for a region that is already mapped, identically (same addresses, size and
    /// offset, in the same file): QEMU 7.2 (seen with the vhost-user-net sample and mq=on) sends
    /// one per vhost device, and a multiqueue net device is one vhost device per queue pair on one
    /// connection, so every region is added once per queue pair. It is acknowledged and counted, so the matching REM_MEM_REGs are too; a region that
    /// only overlaps is still refused.
    /// </summary>
    private bool IsRepeatOfMappedRegion(in VhostUserMemoryRegion region, ReceivedFds fds)
    {
        if (fds.Count != 1)
        {
            return false;
        }

        GuestMemory current = _memory.Acquire();
        try
        {
            GuestMemoryRegion? same = null;
            foreach (GuestMemoryRegion r in current.Regions)
            {
                if (r.GuestPhysicalAddress == region.GuestPhysicalAddress && r.Size == region.MemorySize)
                {
                    same = r;
                }
            }

            if (same is null)
            {
                return false;
            }

            using SafeFileHandle fd = fds.Take(0);
            if (!same.IsSameAs(region.GuestPhysicalAddress, region.MemorySize, region.UserAddress, region.MmapOffset, Fd.Stat(fd)))
            {
                throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"ADD_MEM_REG: region [0x{region.GuestPhysicalAddress:x}, +0x{region.MemorySize:x}) is already mapped from another file, offset or user address");
            }

            (ulong, ulong) key = (region.GuestPhysicalAddress, region.MemorySize);
            _repeatedAdds[key] = _repeatedAdds.GetValueOrDefault(key) + 1;
            Log.MemoryRegionRepeat(_logger, "ADD_MEM_REG", region.GuestPhysicalAddress, region.MemorySize);
            return true;
        }
        finally
        {
            current.Release();
        }
    }

    public void RemoveMemoryRegion(in VhostUserMemoryRegion region)
    {
        ulong gpa = region.GuestPhysicalAddress;
        ulong size = region.MemorySize;
        if (_repeatedAdds.TryGetValue((gpa, size), out int repeats))
        {
            // One REM_MEM_REG per ADD_MEM_REG: the region goes with the last one.
            if (repeats == 1)
            {
                _repeatedAdds.Remove((gpa, size));
            }
            else
            {
                _repeatedAdds[(gpa, size)] = repeats - 1;
            }

            Log.MemoryRegionRepeat(_logger, "REM_MEM_REG", gpa, size);
            return;
        }

        GuestMemory current = _memory.Acquire();
        try
        {
            bool known = false;
            foreach (GuestMemoryRegion r in current.Regions)
            {
                known |= r.GuestPhysicalAddress == gpa && r.Size == size;
            }

            if (!known)
            {
                throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"REM_MEM_REG: no memory region [0x{gpa:x}, +0x{size:x}) is mapped");
            }
        }
        finally
        {
            current.Release();
        }

        // A started ring whose areas lie in the region is unmapped with it (the worker is
        // paused, so no chain of it is in use) and keeps its position: QEMU removes a changed
        // region and adds it back (ADD_MEM_REG), and the ring resumes then (RebindRings).
        UpdateMemory(() => _memory.RemoveRegion(gpa, size));
    }

    /// <summary>
    /// Maps the dirty log (a memfd, sealed against shrinking where possible) and, while logging
    /// is on, moves every ring and the device to it at once (workers paused): QEMU replaces the
    /// log with a bigger one while rings run when guest memory grows during a migration. The
    /// log must cover all guest memory mapped now (QEMU sizes it so).
    /// </summary>
    public void SetLogBase(in VhostUserLog log, ReceivedFds fds)
    {
        DirtyLog mapped;
        using (SafeFileHandle fd = fds.Take(0))
        {
            if (GuestMemoryFileSeals.Enforce(fd, _memoryFilePolicy, isLog: true) == GuestMemoryFileSeals.State.Unsealable)
            {
                Log.MemoryFileUnsealed(_logger, 0);
            }

            mapped = DirtyLog.Map(fd, log.MmapOffset, log.MmapSize);
        }

        GuestMemory current = _memory.Acquire();
        ulong end = 0;
        foreach (GuestMemoryRegion r in current.Regions)
        {
            end = Math.Max(end, r.GuestPhysicalAddress + r.Size);
        }

        current.Release();
        if (end > mapped.PageCount * DirtyLog.PageSize)
        {
            mapped.Dispose();
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"SET_LOG_BASE: a log of {log.MmapSize} bytes covers guest addresses below 0x{log.MmapSize * 8 * DirtyLog.PageSize:x}, but guest memory reaches 0x{end:x} (it needs at least {(end + (8 * DirtyLog.PageSize) - 1) / (8 * DirtyLog.PageSize)} bytes)");
        }

        DirtyLog? old = _log;
        _log = mapped;
        if (LoggingAll)
        {
            UpdateMemory(() => _memory.SetDirtyLog(mapped));
        }

        Log.DirtyLogMapped(_logger, mapped.Size, mapped.PageCount * DirtyLog.PageSize, LoggingAll);
        old?.Dispose();
    }

    /// <summary>SET_LOG_FD: an eventfd the workers signal after completions while dirty logging is on (the spec's "inform the front-end that the log has been modified"; QEMU does not send it).</summary>
    public void SetLogFd(ReceivedFds fds)
    {
        EventFd fd = EventFd.FromHandle(TakeEventFd(fds, "SetLogFd") ?? throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, "SetLogFd: no fd attached"));
        EventFd? old = _logEvent;
        using (PauseAll())
        {
            _logEvent = fd;
            foreach (Vring v in _vrings)
            {
                v.LogEvent = fd;
            }
        }

        old?.Dispose();
    }

    public void SetVringNum(int index, uint num)
    {
        StoppedRing(index, FrontendRequest.SetVringNum).SetSize(num);
    }

    public void SetVringAddress(in VhostUserVringAddress address)
    {
        Vring v = Ring(address.Index);
        ulong? logAddress = (address.Flags & VhostUserVringAddressFlags.Log) != 0 ? address.LogAddress : null;
        if (!v.IsStarted)
        {
            v.SetAddresses(address.DescriptorTableAddress, address.AvailableRingAddress, address.UsedRingAddress, logAddress);
            return;
        }

        // A running ring: QEMU turns used-ring logging on and off this way at migration start
        // and end (same addresses, VHOST_VRING_F_LOG toggled), and waits for the answer. Moving
        // a running ring is not possible.
        if (!v.HasSameAddresses(address.DescriptorTableAddress, address.AvailableRingAddress, address.UsedRingAddress))
        {
            throw new InvalidOperationException($"SET_VRING_ADDR: ring {v.Index} is started; while it runs only VHOST_VRING_F_LOG and the log address may change, not the ring addresses (stop it with GET_VRING_BASE first)");
        }

        GuestMemory memory = _memory.Acquire();
        try
        {
            using (_workerOfQueue[v.Index].Pause(_whilePausing))
            {
                v.SetRingLogAddress(logAddress, memory);
            }
        }
        finally
        {
            memory.Release();
        }

        Log.RingLogging(_logger, v.Index, logAddress.HasValue, logAddress ?? 0);
    }

    public void SetVringBase(int index, uint baseValue)
    {
        StoppedRing(index, FrontendRequest.SetVringBase).SetBase(baseValue);
    }

    public uint GetVringBase(int index) => StopForBase(index, SuspendsOnGetVringBase, "GET_VRING_BASE");

    /// <summary>GET_VRING_BASE and GET_VRING_BASE_SKIP_DRAIN: stop a ring, draining or suspending its in-flight requests.</summary>
    private uint StopForBase(int index, bool suspendRequested, string why)
    {
        Vring v = Ring(index);
        uint value;
        using (_workerOfQueue[v.Index].Pause(_whilePausing))
        {
            // The spec: the back-end completes the ring's in-flight requests before it stops it,
            // unless the front-end asked it to suspend them (VhostUserDaemonHandler.InflightMigration.cs).
            // Chains the device only holds go back to the ring first: the base excludes them.
            BeginStop(v, why);
            bool suspended = suspendRequested && TrySuspendInFlight(v, why);
            if (!suspended)
            {
                DrainInFlight(v, why);
            }

            // Stopping keeps the enable state: the spec keeps the two states independent, and so do
            // DPDK, libvhost-user and rust-vmm. (QEMU's net re-sends SET_VRING_ENABLE on every
            // start anyway; blk re-enables after the kick.)
            value = v.Stop(suspended);
        }

        if (LoggingAll && _log is { } log)
        {
            // The end of a migration: what this connection logged, for the operator.
            Log.RingStoppedLogging(_logger, v.Index, value, log.MarkedPages);
        }
        else
        {
            Log.RingStopped(_logger, v.Index, value);
        }

        _backend.OnVringStateChanged(v);
        DeriveStatus();
        return value;
    }

    public void SetVringKick(int index, ReceivedFds fds)
    {
        Vring v = Ring(index);
        SafeFileHandle? fd = fds.TryTake(0); // an eventfd: the dispatcher checked it

        // No fd: the front-end polls or kicks in-band (VRING_KICK); a daemon-owned eventfd stands
        // in for the kick fd, so an in-band kick takes the same path as an eventfd kick.
        EventFd? kick = fd is null ? new EventFd(EventFdFlags.NonBlocking) : EventFd.FromHandle(fd);
        VhostUserWorker worker = _workerOfQueue[v.Index];
        try
        {
            using (worker.Pause(_whilePausing))
            {
                // A new kick fd restarts the ring but keeps its enable state: QEMU 7.2 vhost-user-net
                // sends SET_VRING_ENABLE before SET_FEATURES and the kick, and never again.
                BeginStop(v, "SET_VRING_KICK");
                v.Stop();
                v.Kick = kick;
                kick = null;
                StartRing(v);
                worker.AddKick(v);
            }
        }
        finally
        {
            kick?.Dispose();
        }

        // Whatever the driver published before the kick fd arrived gets processed now.
        if (v.IsReady)
        {
            v.RequestProcessing();
        }

        _backend.OnVringStateChanged(v);
        DeriveStatus();
    }

    public void SetVringCall(int index, ReceivedFds fds) => ReplaceNotifier(index, fds, static (v, fd) =>
    {
        EventFd? old = v.Call;
        v.Call = fd;
        return old;
    });

    public void SetVringError(int index, ReceivedFds fds) => ReplaceNotifier(index, fds, static (v, fd) =>
    {
        EventFd? old = v.Error;
        v.Error = fd;
        return old;
    });

    /// <summary>
    /// SET_VRING_CALL / SET_VRING_ERR: swaps the ring's eventfd (none without an fd) while its
    /// worker is paused, then closes the one it replaced.
    /// </summary>
    private void ReplaceNotifier(int index, ReceivedFds fds, Func<Vring, EventFd?, EventFd?> swap)
    {
        Vring v = Ring(index);
        SafeFileHandle? fd = fds.TryTake(0); // an eventfd: the dispatcher checked it
        EventFd? replacement = fd is null ? null : EventFd.FromHandle(fd);
        EventFd? old;
        using (_workerOfQueue[v.Index].Pause(_whilePausing))
        {
            old = swap(v, replacement);
        }

        old?.Dispose();
    }

    public ulong GetQueueNum() => (ulong)_vrings.Length;

    public void SetVringEnable(int index, bool enable)
    {
        Vring v = Ring(index);
        v.IsEnabled = enable;

        // Kicks that arrived while the ring was disabled were drained without processing: re-kick.
        if (enable && v.IsReady)
        {
            v.RequestProcessing();
        }

        _backend.OnVringStateChanged(v);
    }

    public void SendRarp(ReadOnlySpan<byte> macAddress) => _backend.SendRarp(macAddress);

    public void SetBackendRequestFd(VhostUserBackendChannel channel)
    {
        VhostUserBackendChannel? old = _channel;
        Volatile.Write(ref _channel, channel);
        UpdateInbandChannels();
        _configChanges?.Channel = channel;
        old?.Dispose();
        _backend.SetBackendChannel(channel);
    }

    public void VringKick(int index)
    {
        // Same as a write to the kick eventfd: the worker drains it and calls the device. The spec
        // starts a ring on its first kick, in-band or through the fd; a ring that has no kick
        // fd yet starts now, with a daemon eventfd as for SET_VRING_KICK without an fd.
        Vring v = Ring(index);
        if (!v.IsStarted && v.HasAddresses)
        {
            SetVringKick((byte)v.Index, ReceivedFds.Empty);
            Log.RingStartedInband(_logger, v.Index);
            return;
        }

        v.RequestProcessing();
    }

    public VhostUserShmemConfig GetShmemConfig() => _backend.GetShmemConfig();

    public SafeFileHandle? GetSharedObject(Guid uuid) => _backend.GetSharedObject(uuid);

    public void GpuSetSocket(ReceivedFds fds) => _backend.SetGpuSocket(fds.Take(0));

    public void GetConfig(uint offset, VhostUserConfigFlags flags, Span<byte> data)
    {
        if (_configSpace is { } space)
        {
            space.Read(offset, data);
        }
        else
        {
            _backend.GetConfig(offset, data);
        }
    }

    public void SetConfig(uint offset, VhostUserConfigFlags flags, ReadOnlySpan<byte> data)
    {
        if (_configSpace is { } space)
        {
            space.WriteFromDriver(offset, data);
        }
        else
        {
            _backend.SetConfig(offset, data);
        }
    }

    public SafeFileHandle GetInflightFd(in VhostUserInflight request, out VhostUserInflight reply)
    {
        bool packed = IsPackedInflight;
        if (request.QueueCount > _vrings.Length)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"GET_INFLIGHT_FD: {request.QueueCount} queues, the device has {_vrings.Length}");
        }

        ulong size = InflightRegion.RegionSize(request.QueueCount, request.QueueSize, packed);
        if (size > VhostUserLimits.MaxInflightMmapSize)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"GET_INFLIGHT_FD: a region for {request.QueueCount} queues of {request.QueueSize} would take 0x{size:x} bytes");
        }

        InflightRegion region = InflightRegion.Create(request.QueueCount, request.QueueSize, _negotiation.Features, out SafeFileHandle fd, packed);
        ReplaceInflight(region);
        reply = new VhostUserInflight { MmapSize = size, MmapOffset = 0, QueueCount = request.QueueCount, QueueSize = request.QueueSize };
        return fd;
    }

    public void SetInflightFd(in VhostUserInflight inflight, ReceivedFds fds)
    {
        if (inflight.QueueCount > _vrings.Length)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"SET_INFLIGHT_FD: {inflight.QueueCount} queues, the device has {_vrings.Length}");
        }

        InflightRegion region;
        using (SafeFileHandle fd = fds.Take(0))
        {
            CheckSeal(fd, "the inflight region");
            region = InflightRegion.Map(fd, inflight, IsPackedInflight);
        }

        ReplaceInflight(region);
    }

    public void ResetDevice()
    {
        ResetRings(keepNotifiers: true);
        _iotlb.Clear();
        ChangeStatus(VirtioDeviceStatus.Reset);
        _backend.Reset();
    }

    /// <summary>
    /// SET_STATUS: the driver status as the front-end reports it. QEMU sends FEATURES_OK after
    /// SET_FEATURES, ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK when it starts the device and 0 when it
    /// stops it (pause, migration, reboot: ring state and memory stay), see docs/vm-lifecycle.md.
    /// </summary>
    public void SetStatus(byte status) => ChangeStatus((VirtioDeviceStatus)status);

    public byte GetStatus() => _status;

    /// <summary>
    /// Without the STATUS protocol feature the daemon derives the status the device sees from the
    /// session: FEATURES_OK (with ACKNOWLEDGE|DRIVER) once features are acked, DRIVER_OK while a
    /// ring runs, 0 after RESET_DEVICE and at disconnect.
    /// </summary>
    private void DeriveStatus()
    {
        if (StatusFromFrontend)
        {
            return;
        }

        VirtioDeviceStatus status = VirtioDeviceStatus.Reset;
        if (_negotiation.FeaturesSet)
        {
            status = VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk;
            foreach (Vring v in _vrings)
            {
                if (v.IsStarted)
                {
                    status |= VirtioDeviceStatus.DriverOk;
                    break;
                }
            }
        }

        ChangeStatus(status);
    }

    private void ChangeStatus(VirtioDeviceStatus status)
    {
        if ((byte)status == _status)
        {
            return;
        }

        _status = (byte)status;
        _configChanges?.DriverRunning = (status & VirtioDeviceStatus.DriverOk) != 0;
        Log.DriverStatus(_logger, status, StatusFromFrontend ? "SET_STATUS" : "derived");
        _backend.OnDriverStatusChanged(status);
    }

    public SafeFileHandle? SetDeviceStateFd(VhostUserTransferDirection direction, VhostUserTransferPhase phase, ReceivedFds fds)
    {
        SafeFileHandle fd = fds.Take(0);
        if (_deviceState is null)
        {
            fd.Dispose();
            throw new NotSupportedException("this device has no migratable state (IVhostUserBackend.DeviceState)");
        }

        _deviceState.Start(direction, phase, fd);
        Log.DeviceStateTransferStarted(_logger, direction);
        return null;
    }

    public void CheckDeviceState()
    {
        if (_deviceState is null)
        {
            throw new NotSupportedException("this device has no migratable state (IVhostUserBackend.DeviceState)");
        }

        try
        {
            _deviceState.Check();
        }
        catch (InvalidOperationException e)
        {
            Log.DeviceStateTransferFailed(_logger, e.Message);
            throw;
        }
    }

    /// <summary>Releases everything this connection created: rings stopped and reset, fds closed, memory unmapped once unused.</summary>
    public void Dispose()
    {
        // First: ranges still registered would keep a worker asleep in a fault nobody serves.
        _postcopy?.Dispose();
        _postcopy = null;

        if (_disposed)
        {
            return;
        }

        _disposed = true;
        ResetRings();
        foreach (Vring v in _vrings)
        {
            v.ReleaseRetainedMemory();
        }

        _memory.Dispose();
        _log?.Dispose();
        _log = null;
        foreach (Vring v in _vrings)
        {
            v.LogEvent = null;
        }

        _logEvent?.Dispose();
        _logEvent = null;
        _inflight?.Dispose();
        _inflight = null;
        _configChanges?.Dispose();
        _deviceState?.Dispose();
        VhostUserBackendChannel? channel = _channel;
        Volatile.Write(ref _channel, null);
        _iotlb.Clear();
        UpdateInbandChannels();
        channel?.Dispose();
        ChangeStatus(VirtioDeviceStatus.Reset);
        _backend.Reset();
    }

    /// <summary>The inflight region's layout follows the ring layout acked so far (QEMU sends SET_FEATURES before GET_INFLIGHT_FD for exactly this).</summary>
    private bool IsPackedInflight => _negotiation.HasFeatures((ulong)VirtioFeatures.RingPacked);

    /// <summary>Takes the optional fd of a SET_LOG_FD message and checks it is an eventfd (vring kick/call/err fds are checked by the dispatcher).</summary>
    private static SafeFileHandle? TakeEventFd(ReceivedFds fds, string request)
    {
        SafeFileHandle? fd = fds.TryTake(0);
        if (fd is not null && !Fd.IsEventFd(fd))
        {
            fd.Dispose();
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"{request}: the fd is not an eventfd");
        }

        return fd;
    }

    private void CheckSeal(SafeFileHandle fd, string what)
    {
        if (GuestMemoryFileSeals.Enforce(fd, _memoryFilePolicy) == GuestMemoryFileSeals.State.Unsealable)
        {
            Log.MemoryFileUnsealed(_logger, 0);
            Log.MemoryFileSealState(_logger, 0, $"{what}: unsealable");
        }
    }

    private GuestMemoryRegion MapRegion(in VhostUserMemoryRegion region, ReceivedFds fds, int index)
    {
        using SafeFileHandle fd = fds.Take(index);
        try
        {
            GuestMemoryFileSeals.State seal = GuestMemoryFileSeals.Enforce(fd, _memoryFilePolicy);
            if (seal == GuestMemoryFileSeals.State.Unsealable)
            {
                Log.MemoryFileUnsealed(_logger, region.GuestPhysicalAddress);
            }
            else
            {
                Log.MemoryFileSealState(_logger, region.GuestPhysicalAddress, seal.ToString());
            }

            return GuestMemoryRegion.Map(fd, region.MmapOffset, region.MemorySize, region.GuestPhysicalAddress, region.UserAddress);
        }
        catch (ArgumentException e)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"memory region at 0x{region.GuestPhysicalAddress:x}: {e.Message}", e);
        }
    }

    private Vring Ring(long index)
    {
        if ((ulong)index >= (ulong)_vrings.Length)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"ring {index} does not exist (the device has {_vrings.Length})");
        }

        return _vrings[index];
    }

    private Vring StoppedRing(int index, FrontendRequest request)
    {
        Vring v = Ring(index);
        if (v.IsStarted)
        {
            throw new InvalidOperationException($"{request}: ring {index} is started (stop it with GET_VRING_BASE first)");
        }

        return v;
    }

    private PauseAllScope PauseAll()
    {
        var scopes = new VringWorkerThread.PauseScope[_workers.Length];
        for (int i = 0; i < _workers.Length; i++)
        {
            scopes[i] = _workers[i].Pause(_whilePausing);
        }

        return new PauseAllScope(scopes);
    }

    private void UpdateMemory(Action update)
    {
        using (PauseAll())
        {
            // No completion may land in memory that goes away: wait for the requests in flight,
            // and keep the old snapshot mapped for any that do not finish in time.
            foreach (Vring v in _vrings)
            {
                UnpopHeldChains(v, "a memory update");
                DrainInFlight(v, "a memory update");
                v.RetainInFlightMemory();
            }

            update();
            RebindRings();
        }

        GuestMemory now = _memory.Acquire();
        int regions = now.Regions.Count;
        now.Release();
        Log.MemoryUpdated(_logger, regions);
        _backend.UpdateMemory(_memory);
    }

    /// <summary>Moves every started ring to the current snapshot (workers paused); see <see cref="Vring.Rebind"/>.</summary>
    private void RebindRings()
    {
        GuestMemory memory = _memory.Acquire();
        try
        {
            foreach (Vring v in _vrings)
            {
                switch (v.Rebind(memory, out VhostException? lost))
                {
                    case Vring.RebindResult.Regained:
                        Log.RingRegainedMemory(_logger, v.Index, v.Queue.GetVringBase());
                        break;
                    case Vring.RebindResult.Lost:
                        Log.RingLostMemory(_logger, v.Index, lost!);
                        break;
                }
            }
        }
        finally
        {
            memory.Release();
        }
    }

    /// <summary>Starts a ring that just got its kick fd (worker paused).</summary>
    private void StartRing(Vring v)
    {
        GuestMemory memory = _memory.Acquire();
        try
        {
            int resubmit = v.Start(memory, _inflight, _inFlightTimeout);
            if (v.IsStartPending)
            {
                Log.RingWaitsForIotlb(_logger, v.Index);
                return;
            }

            Log.RingStarted(_logger, v.Index, v.Queue.Size, v.Queue.GetVringBase(), resubmit);
        }
        finally
        {
            memory.Release();
        }
    }

    /// <summary>
    /// A ring is about to stop (worker paused): it hands out no more chains, and the device puts
    /// back the ones it holds, so the base excludes them and the drain does not wait for them.
    /// </summary>
    private void BeginStop(Vring v, string why)
    {
        v.BeginStop();
        UnpopHeldChains(v, why);
    }

    /// <summary>
    /// Asks the device to put back the chains it holds on a ring (worker paused) before the ring
    /// stops or its memory changes, so the drain that follows waits only for chains being worked on.
    /// A device failure is logged; what it left in flight is waited for, then abandoned.
    /// </summary>
    private void UnpopHeldChains(Vring v, string why)
    {
        if (v.InFlight == 0 || v.IsBroken)
        {
            return;
        }

        long popped = v.PoppedCount;
        try
        {
            _backend.UnpopHeldChains(v);
        }
        catch (Exception e)
        {
            Log.UnpopHeldChainsFailed(_logger, v.Index, why, e);
        }

        if (popped != v.PoppedCount)
        {
            Log.HeldChainsPutBack(_logger, v.Index, popped - v.PoppedCount, why);
        }
    }

    /// <summary>Waits (bounded) for a ring's in-flight requests, the worker paused; logs what is left.</summary>
    private void DrainInFlight(Vring v, string why)
    {
        // A broken ring publishes nothing more: its chains (often the one the device was walking
        // when the guest broke the ring) are abandoned at once, and a late completion is dropped.
        if (v.InFlight != 0 && !v.IsBroken && !v.DrainInFlight(_inFlightTimeout))
        {
            Log.InFlightLeft(_logger, v.Index, v.InFlight, why, _inFlightTimeout.TotalSeconds);
        }
    }

    /// <summary>
    /// Stops and resets every ring. <paramref name="keepNotifiers"/>: RESET_DEVICE keeps the call and
    /// error eventfds (QEMU sends SET_VRING_ERR only when it connects, and a new SET_VRING_CALL
    /// replaces the call fd at the next start); a disconnect closes them.
    /// </summary>
    private void ResetRings(bool keepNotifiers = false)
    {
        using (PauseAll())
        {
            foreach (Vring v in _vrings)
            {
                BeginStop(v, "a reset");
                DrainInFlight(v, "a reset");
                v.Stop();
                v.Reset(keepNotifiers);
            }
        }
    }

    /// <summary>Points every ring at the back-end channel when in-band notifications are negotiated (workers paused, so no worker sends on a channel being closed).</summary>
    private void UpdateInbandChannels()
    {
        VhostUserBackendChannel? channel = _negotiation.HasProtocolFeatures(VhostUserProtocolFeatures.InbandNotifications) ? _channel : null;
        using (PauseAll())
        {
            foreach (Vring v in _vrings)
            {
                v.InbandChannel = channel;
            }
        }
    }

    private void ReplaceInflight(InflightRegion region)
    {
        InflightRegion? old;
        using (PauseAll())
        {
            old = _inflight;
            _inflight = region;
            foreach (Vring v in _vrings)
            {
                v.UseInflightRegion(region);
            }
        }

        old?.Dispose();
    }

    private readonly struct PauseAllScope(VringWorkerThread.PauseScope[] scopes) : IDisposable
    {
        public void Dispose()
        {
            foreach (VringWorkerThread.PauseScope s in scopes)
            {
                s.Dispose();
            }
        }
    }
}
