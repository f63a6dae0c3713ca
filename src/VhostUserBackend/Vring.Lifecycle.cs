using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// A ring's life as the front-end drives it: the negotiated ring features and layout, size,
/// addresses and base while it is stopped; start (kick fd), rebinding to new guest memory while it
/// runs, stop (GET_VRING_BASE) and reset. The protocol handler validates messages and calls these
/// on the control thread while the ring's worker is paused; the state lives here, once.
/// </summary>
public sealed partial class Vring
{
    private ulong _descriptorUserAddress;
    private ulong _availUserAddress;
    private ulong _usedUserAddress;
    private bool _hasAddresses;
    private ulong? _ringLogAddress;
    private bool _eventIdx;
    private bool _indirect;

    /// <summary>Whether SET_VRING_ADDR gave the ring its addresses since the last reset.</summary>
    internal bool HasAddresses => _hasAddresses;

    /// <summary>
    /// SET_FEATURES: the ring layout (split or packed) and the ring features every later start uses.
    /// A layout change replaces the queue, which only a stopped ring allows.
    /// </summary>
    /// <exception cref="InvalidOperationException">The layout changes while the ring is started.</exception>
    internal void ApplyFeatures(bool packed, bool eventIdx, bool indirect)
    {
        if ((Queue is PackedQueue) != packed)
        {
            if (_started)
            {
                throw new InvalidOperationException($"ring {Index} is started; the ring layout cannot change");
            }

            Virtqueue old = Queue;
            Queue = packed ? new PackedQueue(MaxQueueSize) : new SplitQueue(MaxQueueSize);
            old.Dispose();
        }

        _eventIdx = eventIdx;
        _indirect = indirect;
    }

    /// <summary>SET_VRING_NUM (ring stopped).</summary>
    /// <exception cref="VhostUserProtocolException">Above the device's maximum.</exception>
    /// <exception cref="VirtqueueException">Zero, or not a power of two for a split ring.</exception>
    internal void SetSize(uint size)
    {
        if (size > MaxQueueSize)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"SET_VRING_NUM: size {size} of ring {Index} is above the device's maximum {MaxQueueSize}");
        }

        Queue.Size = (ushort)size;
    }

    /// <summary>SET_VRING_BASE (ring stopped).</summary>
    internal void SetBase(uint value) => Queue.SetVringBase(value);

    /// <summary>SET_VRING_ADDR on a stopped ring: the front-end's addresses, translated at the next start.</summary>
    internal void SetAddresses(ulong descriptorTable, ulong availRing, ulong usedRing, ulong? logAddress)
    {
        _descriptorUserAddress = descriptorTable;
        _availUserAddress = availRing;
        _usedUserAddress = usedRing;
        _ringLogAddress = logAddress;
        _hasAddresses = true;
    }

    /// <summary>Whether a started ring's addresses are these (a running ring may only change its logging).</summary>
    internal bool HasSameAddresses(ulong descriptorTable, ulong availRing, ulong usedRing)
        => descriptorTable == _descriptorUserAddress && availRing == _availUserAddress && usedRing == _usedUserAddress;

    /// <summary>
    /// SET_VRING_ADDR on a running ring (QEMU at migration start and end): the used ring's writes
    /// are logged at <paramref name="logAddress"/>, or no longer when null. The log address must
    /// cover the device area inside <paramref name="memory"/> (it is a guest physical address).
    /// </summary>
    /// <exception cref="VhostUserProtocolException">The log address is not guest memory.</exception>
    internal void SetRingLogAddress(ulong? logAddress, GuestMemory memory)
    {
        if (logAddress is { } gpa && Queue.IsReady && !memory.IsRangeMapped(gpa, Queue.DeviceAreaSize))
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"SET_VRING_ADDR: ring {Index}: the log address [0x{gpa:x}, +0x{Queue.DeviceAreaSize:x}) is not guest memory");
        }

        _ringLogAddress = logAddress;
        Queue.RingLogAddress = logAddress;
    }

    /// <summary>
    /// Starts the ring (SET_VRING_KICK, the kick already set): translates its addresses in
    /// <paramref name="memory"/>, applies the ring features, recovers the position and the chains
    /// a previous back-end left in flight from the inflight region (split or packed layout), and activates
    /// the queue.
    /// </summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="region">The inflight region, when the front-end gave one.</param>
    /// <param name="abandonedWait">How long the ring waits at most for chains the device still has from before it last stopped (abandoned) before it takes new ones (default 5 s, as <see cref="VhostUserDaemonOptions.InFlightTimeout"/>).</param>
    /// <returns>How many chains will be resubmitted from the inflight region.</returns>
    /// <exception cref="InvalidOperationException">The ring has no addresses.</exception>
    /// <exception cref="VirtqueueException">An area is not in guest memory, or misaligned.</exception>
    internal int Start(GuestMemory memory, InflightRegion? region, TimeSpan? abandonedWait = null)
    {
        if (!_hasAddresses)
        {
            throw new InvalidOperationException($"SET_VRING_KICK: ring {Index} has no addresses (SET_VRING_ADDR)");
        }

        Virtqueue q = Queue;
        q.Iotlb = Iotlb;
        _startPending = false;
        if (Iotlb is not null && !AreasTranslate(q))
        {
            // ACCESS_PLATFORM: the ring's IOVAs are not in the IOTLB yet. A miss went to the
            // front-end; the ring is started but not ready, and finishes starting when the update
            // arrives (CompletePendingStart), as DPDK does.
            _started = true;
            _startPending = true;
            _pendingInflight = region;
            return 0;
        }

        return Activate(q, memory, region, abandonedWait);
    }

    /// <summary>Maps, recovers and activates the queue of a ring being started (the rest of <see cref="Start"/>).</summary>
    private int Activate(Virtqueue q, GuestMemory memory, InflightRegion? region, TimeSpan? abandonedWait)
    {
        try
        {
            MapAreas(q, memory);
            q.EventIdx = _eventIdx;
            q.IndirectDescriptors = _indirect;
            q.RingLogAddress = _ringLogAddress;
            int resubmit = 0;
            if (region is not null && Index < region.QueueCount)
            {
                if (region.IsPacked != q is PackedQueue)
                {
                    throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"ring {Index} is {(q is PackedQueue ? "packed" : "split")} but the inflight region has the {(region.IsPacked ? "packed" : "split")} layout (VIRTIO_F_RING_PACKED changed after GET/SET_INFLIGHT_FD)");
                }

                if (q is SplitQueue split)
                {
                    var tracker = new InflightTracker(region, Index);
                    ushort ringUsed = memory.Read<ushort>(q.DeviceAreaAddress + 2);
                    ushort inflight = tracker.Recover(split.Size, ringUsed);
                    split.NextAvail = (ushort)(ringUsed + inflight);
                    split.NextUsed = ringUsed;
                    Inflight = tracker;
                }
                else
                {
                    var tracker = new PackedInflightTracker(region, Index);
                    tracker.Recover((PackedQueue)q, memory);
                    Inflight = tracker;
                }

                resubmit = Inflight.PendingResubmissions;
            }

            q.Activate(memory);
            _started = true;
            if (_fencingCount != 0)
            {
                Fence(abandonedWait ?? TimeSpan.FromSeconds(5));
            }

            return resubmit;
        }
        catch
        {
            Inflight = null;
            throw;
        }
    }

    /// <summary>
    /// Stops the ring (GET_VRING_BASE, a new kick fd, reset): the kick is unregistered and
    /// closed, chains still in flight are abandoned, the queue is deactivated with its position
    /// kept, and the enable state is kept (the spec keeps the two states independent).
    /// </summary>
    /// <param name="suspended">The device suspended the chains still in flight (GET_VRING_BASE_SKIP_DRAIN): none of them touches guest memory or the backing store any more, so they do not fence the ring's next start (their inflight marks stay for resubmission).</param>
    /// <returns>The ring's base, as GET_VRING_BASE answers it.</returns>
    internal uint Stop(bool suspended = false)
    {
        Worker?.RemoveKick(this);
        Kick?.Dispose();
        Kick = null;
        _started = false;
        _startPending = false;
        _pendingInflight = null;
        _stopping = false;
        bool broken = _broken;
        ClearBroken();
        AbandonInFlight(fence: !broken && !suspended);
        Queue.Deactivate();
        Inflight = null;
        return Queue.GetVringBase();
    }

    /// <summary>
    /// Moves a started ring to a new memory snapshot (a memory-table change, dirty logging on or
    /// off). A ring whose areas are gone is unmapped but stays started, keeping its position; when
    /// its areas come back it is mapped again and processed.
    /// </summary>
    /// <param name="memory">The new snapshot.</param>
    /// <param name="lost">Why the ring lost its memory (when the result is <see cref="RebindResult.Lost"/>).</param>
    internal RebindResult Rebind(GuestMemory memory, out VhostException? lost)
    {
        lost = null;
        if (!_started || !_hasAddresses)
        {
            return RebindResult.NotStarted;
        }

        if (_startPending)
        {
            return CompletePendingStart(memory, out lost);
        }

        Virtqueue q = Queue;
        bool wasReady = q.IsReady;
        try
        {
            if (wasReady && TryTranslate(memory, out ulong desc, out ulong avail, out ulong used)
                && desc == q.DescriptorTableAddress && avail == q.DriverAreaAddress && used == q.DeviceAreaAddress)
            {
                q.UpdateMemory(memory);
                return RebindResult.Moved;
            }

            if (wasReady)
            {
                q.Deactivate();
            }

            if (Iotlb is not null && !AreasTranslate(q))
            {
                throw new VirtqueueException(VirtqueueError.IotlbMiss, $"ring {Index}: its areas are not in the IOTLB (a miss was sent)");
            }

            MapAreas(q, memory);
            q.Activate(memory);
            if (wasReady)
            {
                return RebindResult.Moved;
            }

            RequestProcessing();
            return RebindResult.Regained;
        }
        catch (VhostException e)
        {
            if (q.IsReady)
            {
                q.Deactivate();
            }

            lost = e;
            return wasReady ? RebindResult.Lost : RebindResult.StillUnmapped;
        }
    }

    /// <summary>
    /// Resets the ring (RESET_DEVICE, disconnect) after <see cref="Stop"/>: indices, size,
    /// addresses, ring logging, the ring features (back to a split ring without EVENT_IDX or
    /// indirect descriptors, as before any SET_FEATURES) and the enable state are cleared. <paramref name="keepNotifiers"/>:
    /// RESET_DEVICE keeps the call and error eventfds (QEMU sends SET_VRING_ERR only when it
    /// connects); a disconnect closes them.
    /// </summary>
    internal void Reset(bool keepNotifiers)
    {
        ApplyFeatures(packed: false, eventIdx: false, indirect: false);
        Queue.Reset();
        if (!keepNotifiers)
        {
            Call?.Dispose();
            Call = null;
            Error?.Dispose();
            Error = null;
        }

        _hasAddresses = false;
        _ringLogAddress = null;
        _enabled = false;
    }

    /// <summary>A new inflight region (GET/SET_INFLIGHT_FD): a running ring keeps no pointer into the old one.</summary>
    internal void UseInflightRegion(InflightRegion region)
    {
        if (Inflight is null)
        {
            return;
        }

        if (Index >= region.QueueCount || Queue.Size > region.QueueSize || region.IsPacked != Queue is PackedQueue)
        {
            Inflight = null;
        }
        else if (Queue is PackedQueue packed)
        {
            // A running packed ring starts the new region at its current position; the chains in
            // flight now are not in it (their completions still move its used position).
            var tracker = new PackedInflightTracker(region, Index);
            tracker.SetUp(packed.GetVringBase());
            Inflight = tracker;
        }
        else
        {
            Inflight = new InflightTracker(region, Index);
        }
    }

    /// <summary>Translates the front-end's addresses of the three areas to guest physical addresses and sets them on the (stopped) queue.</summary>
    private void MapAreas(Virtqueue q, GuestMemory memory)
    {
        q.DescriptorTableAddress = Translate(memory, "descriptor table", _descriptorUserAddress, q.DescriptorTableSize, DescriptorTableAccess);
        q.DriverAreaAddress = Translate(memory, "driver area", _availUserAddress, q.DriverAreaSize, VhostIotlbAccess.ReadOnly);
        q.DeviceAreaAddress = Translate(memory, "device area", _usedUserAddress, q.DeviceAreaSize, VhostIotlbAccess.WriteOnly);
    }

    private bool TryTranslate(GuestMemory memory, out ulong desc, out ulong avail, out ulong used)
    {
        Virtqueue q = Queue;
        avail = used = 0;
        return TryTranslateArea(memory, _descriptorUserAddress, q.DescriptorTableSize, DescriptorTableAccess, out desc, out _)
            && TryTranslateArea(memory, _availUserAddress, q.DriverAreaSize, VhostIotlbAccess.ReadOnly, out avail, out _)
            && TryTranslateArea(memory, _usedUserAddress, q.DeviceAreaSize, VhostIotlbAccess.WriteOnly, out used, out _);
    }

    private ulong Translate(GuestMemory memory, string what, ulong address, ulong length, VhostIotlbAccess access)
    {
        if (!TryTranslateArea(memory, address, length, access, out ulong gpa, out string? why))
        {
            throw new VirtqueueException(VirtqueueError.InvalidRingAddress, $"ring {Index}: {what} at {(Iotlb is null ? "front-end address" : "IOVA")} 0x{address:x} (+0x{length:x}) {why}");
        }

        return gpa;
    }

    /// <summary>What <see cref="Rebind"/> did.</summary>
    internal enum RebindResult
    {
        /// <summary>The ring is not started (or has no addresses): nothing to do.</summary>
        NotStarted,

        /// <summary>The running ring now uses the new snapshot.</summary>
        Moved,

        /// <summary>The ring's areas are mapped again; it was kicked.</summary>
        Regained,

        /// <summary>The running ring's areas are gone: it is unmapped, keeps its position and waits for them.</summary>
        Lost,

        /// <summary>The ring was unmapped and still is.</summary>
        StillUnmapped,
    }
}
