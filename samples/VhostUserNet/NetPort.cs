using System.Buffers.Binary;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using System.Runtime.ExceptionServices;
using Vhost;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Migration;
using VhostUserBackend.Config;
using VhostUserBackend.Devices.Net;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserNet;

/// <summary>
/// One virtio-net port: the device one vhost-user front-end (one QEMU NIC) drives. Queues
/// <c>2k</c> are RX and <c>2k+1</c> TX for each of the queue pairs, all served by one worker.
/// </summary>
/// <remarks>
/// <para>Data path (the worker, in <see cref="HandleEvent"/>): a TX kick copies each frame (its
/// virtio-net header included, offload fields untouched) out of guest memory into a preallocated
/// buffer, completes the chain, and hands the frame to the mode (switch: into other ports'
/// <see cref="Inbound"/> queues, waking their workers; responder: its answer into this port's own
/// queue; cross: into the paired port's queue; sink: its headers read, then dropped; source:
/// dropped). Then, and on an RX kick or a wake-up, the port moves queued
/// frames into its RX rings, spanning several buffers with MRG_RXBUF. Nothing is allocated per
/// frame.</para>
/// <para>Offloads pass through: the header travels with the frame. A receiving driver that did not
/// negotiate GUEST_CSUM gets the partial checksum completed in software; a GSO frame for a driver
/// without the matching GUEST_TSO4/TSO6/UFO/ECN feature is dropped and counted.</para>
/// </remarks>
internal sealed class NetPort : IVhostUserBackend, IDisposable
{
    /// <summary>The largest frame: a 64 KiB GSO packet, its Ethernet and VLAN headers.</summary>
    public const int MaxFrameSize = 65535 + 14 + 4;

    /// <summary>A frame and its 12-byte header, as stored in the queues.</summary>
    public const int MaxEntrySize = VirtioNetHeader.Size + MaxFrameSize;

    /// <summary>Chains taken from a ring at once: popped, prefetched, then processed (DPDK's burst size).</summary>
    public const int Burst = 32;

    /// <summary>Frames queued for one port at most.</summary>
    public const int InboundCapacity = 128;

    private const VirtioNetFeatures OffloadFeatures = VirtioNetFeatures.Csum | VirtioNetFeatures.GuestCsum
        | VirtioNetFeatures.HostTso4 | VirtioNetFeatures.HostTso6 | VirtioNetFeatures.HostEcn | VirtioNetFeatures.HostUfo
        | VirtioNetFeatures.GuestTso4 | VirtioNetFeatures.GuestTso6 | VirtioNetFeatures.GuestEcn | VirtioNetFeatures.GuestUfo;

    private readonly NetFabric _fabric;
    private readonly int _pairs;
    private readonly EventFd _wake = new(EventFdFlags.NonBlocking);
    private readonly byte[] _frame = GC.AllocateUninitializedArray<byte>(MaxEntrySize);
    private readonly DescriptorChain[] _burst = new DescriptorChain[Burst];
    private readonly DescriptorChainReader[] _readers = new DescriptorChainReader[Burst];
    private readonly DescriptorChainWriter[] _writers = new DescriptorChainWriter[Burst];
    private readonly uint[] _written = new uint[Burst];
    private readonly VirtqBuffer[] _single = new VirtqBuffer[Burst];
    private readonly byte[] _reply = new byte[MaxEntrySize];
    private readonly SourceFrame _source;
    private readonly RxQueueState[] _rx;
    private readonly bool[] _wakePending;
    private readonly bool[] _signalPending;
    private Vring[]? _rings;
    private ulong _acked;
    private uint _sourceSequence;
    private ulong _sinkDigest;
    private int _disposed;

    /// <summary>Creates port <paramref name="index"/> of <paramref name="fabric"/>.</summary>
    /// <param name="fabric">The process's ports and settings.</param>
    /// <param name="index">The port index.</param>
    public NetPort(NetFabric fabric, int index)
    {
        _fabric = fabric;
        Index = index;
        _pairs = fabric.Settings.QueuePairs;
        if (_pairs is < 1 or > 16)
        {
            throw new ArgumentOutOfRangeException(nameof(fabric), _pairs, "queue pairs must be 1 to 16");
        }

        Inbound = new FrameQueue(InboundCapacity, MaxEntrySize);
        _rx = new RxQueueState[_pairs];
        for (int i = 0; i < _pairs; i++)
        {
            _rx[i] = new RxQueueState();
        }

        _wakePending = new bool[fabric.Ports.Length];
        _signalPending = new bool[fabric.Ports.Length];
        Mac = new PhysicalAddress([0x02, 0x00, 0x00, 0x00, 0x01, (byte)(index + 1)]);
        var config = new VirtioNetConfig { Status = VirtioNetStatus.LinkUp, MaxVirtqueuePairs = checked((ushort)_pairs), Mtu = checked((ushort)fabric.Settings.Mtu) };
        Mac.GetAddressBytes().CopyTo(config.Mac);
        ConfigSpace = VirtioConfigSpace.Create(config);
        DeviceState = new NetPortState(index, Counters, fabric.Table);
        _source = new SourceFrame(fabric.Mac, fabric.IP, fabric.Settings.FrameSize);
    }

    /// <summary>The port index.</summary>
    public int Index { get; }

    /// <summary>The MAC this port's config space suggests to its driver (QEMU uses its own <c>mac=</c>).</summary>
    public PhysicalAddress Mac { get; }

    /// <summary>Frames waiting for this port's RX rings.</summary>
    public FrameQueue Inbound { get; }

    /// <summary>The port's counters.</summary>
    public NetPortCounters Counters { get; } = new();

    /// <inheritdoc/>
    public int QueueCount => 2 * _pairs;

    /// <inheritdoc/>
    public ushort MaxQueueSize => _fabric.Settings.MaxQueueSize;

    /// <inheritdoc/>
    public ulong Features => (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex | VirtioFeatures.RingIndirectDescriptors | VirtioFeatures.RingPacked) | (ulong)(VirtioNetFeatures.Mac | VirtioNetFeatures.Status | VirtioNetFeatures.Mtu | VirtioNetFeatures.MergeableRxBuffers
        | OffloadFeatures | (_pairs > 1 ? VirtioNetFeatures.MultiQueue : VirtioNetFeatures.None));

    /// <inheritdoc/>
    public VhostUserProtocolFeatures ProtocolFeatures => IVhostUserBackend.DefaultProtocolFeatures | VhostUserProtocolFeatures.Rarp;

    /// <inheritdoc/>
    public VirtioConfigSpace ConfigSpace { get; }

    /// <summary>The port's counters and learned MACs, moved by a live migration (DEVICE_STATE).</summary>
    public IVhostUserDeviceState DeviceState { get; }

    /// <summary>
    /// SEND_RARP after a live migration brought a guest to this port. In switch mode the port
    /// learns the guest's MAC and broadcasts a RARP from it to the other ports (DPDK's vhost does
    /// the same through the guest's TX path), so traffic for the guest follows it at once instead
    /// of going to its old port until it transmits. The other modes have no one to tell.
    /// Control thread; the queues are multi-producer and the wake-ups thread-safe.
    /// </summary>
    public void SendRarp(ReadOnlySpan<byte> macAddress)
    {
        Interlocked.Increment(ref Counters.Announcements);
        if (_fabric.Mode != NetMode.Switch || macAddress.Length < 6 || MacTable.IsGroup(macAddress))
        {
            return;
        }

        _fabric.Table.Learn(MacTable.Key(macAddress), Index);
        Span<byte> entry = stackalloc byte[VirtioNetHeader.Size + RarpFrameSize];
        entry.Clear();
        BuildRarp(entry[VirtioNetHeader.Size..], macAddress[..6]);
        NetPort[] ports = _fabric.Ports;
        for (int p = 0; p < ports.Length; p++)
        {
            if (p != Index && ports[p].Inbound.TryEnqueue(entry))
            {
                ports[p].Wake();
            }
        }
    }

    /// <summary>A minimum-size Ethernet frame carrying a RARP "reverse request" from <paramref name="mac"/> (what QEMU and DPDK send).</summary>
    private static void BuildRarp(Span<byte> frame, ReadOnlySpan<byte> mac)
    {
        frame[..6].Fill(0xff);
        mac.CopyTo(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], (ushort)EtherType.Rarp);
        Span<byte> rarp = frame[14..];
        BinaryPrimitives.WriteUInt16BigEndian(rarp, 1);                           // hardware: Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(rarp[2..], (ushort)EtherType.IPv4); // protocol
        rarp[4] = 6;                                                               // hardware address length
        rarp[5] = 4;                                                               // protocol address length
        BinaryPrimitives.WriteUInt16BigEndian(rarp[6..], 3);                      // reverse request
        mac.CopyTo(rarp[8..]);                                                     // sender hardware address
        mac.CopyTo(rarp[18..]);                                                    // target hardware address
    }

    private const int RarpFrameSize = 60;

    /// <summary>The acked features.</summary>
    public VirtioNetFeatures AckedFeatures => (VirtioNetFeatures)Volatile.Read(ref _acked);

    private ulong WakeEvent => (ulong)QueueCount + 1;

    /// <inheritdoc/>
    public TimeSpan GetPollingTime(int workerIndex) => _fabric.Settings.Poll;

    /// <inheritdoc/>
    public void OnWorkersStarted(IReadOnlyList<VhostUserWorker> workers)
    {
        workers[0].RegisterListener(_wake, VringEpollEvents.In, WakeEvent);
        Volatile.Write(ref _rings, [.. workers[0].Vrings]);
    }

    /// <inheritdoc/>
    public void AcknowledgeFeatures(ulong features) => Volatile.Write(ref _acked, features);

    /// <inheritdoc/>
    public void OnVringStateChanged(Vring vring) => Wake();

    /// <summary>
    /// The daemon stops an RX ring, or changes the guest memory under it (control thread, this
    /// port's worker paused): the RX chains held for a frame that does not fit yet go back to the
    /// ring, newest first. So the stop does not wait for them, the base QEMU saves does not count
    /// them, and after a restart (or at once, after a memory change: the ring keeps running and the
    /// worker is called for it) they are popped again for the frame still queued. TX chains are
    /// never held.
    /// </summary>
    /// <param name="vring">The ring.</param>
    public void UnpopHeldChains(Vring vring)
    {
        if ((vring.Index & 1) == 0)
        {
            _rx[vring.Index / 2].PutBack(vring);
        }
    }

    /// <inheritdoc/>
    public void Reset()
    {
        _fabric.Table.Forget(Index);
        Volatile.Write(ref _acked, 0);
    }

    /// <summary>Wakes the port's worker to deliver queued frames (any thread).</summary>
    public void Wake()
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            try
            {
                _wake.TrySignal();
            }
            catch (ObjectDisposedException)
            {
                // Shutting down.
            }
        }
    }

    /// <inheritdoc/>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        try
        {
            if ((ulong)deviceEvent == WakeEvent)
            {
                _wake.TryRead(out _);
            }
            else if (deviceEvent < QueueCount && (deviceEvent & 1) == 1)
            {
                ProcessTx(vrings[deviceEvent]);
            }

            if (_fabric.Mode == NetMode.Source)
            {
                FillFromSource(vrings);
            }
            else
            {
                DeliverInbound(vrings);
            }
        }
        finally
        {
            // Also when a TX ring broke mid-burst: what was delivered is published and signalled.
            WakePeers();
        }
    }

    /// <summary>Releases the wake-up eventfd (after the port's daemon stopped).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _wake.Dispose();
        }
    }

    /// <summary>The virtio-net header size on this port's rings.</summary>
    private int HeaderSize => VirtioNetHeader.GetSize(Volatile.Read(ref _acked));

    private void ProcessTx(Vring tx)
    {
        if (!tx.IsReady)
        {
            return;
        }

        bool used = false;
        do
        {
            tx.DisableNotification();
            int n;
            do
            {
                n = PopBurst(tx, prefetch: true, out VirtqueueException? failure);

                // Three passes over the burst: walk (validate) every chain, then copy every frame,
                // then complete every chain. The copies' cache misses overlap, and no descriptor
                // walk waits behind them (see docs/performance.md).
                int headerSize = HeaderSize;
                bool inPlace = _fabric.Mode is NetMode.Switch or NetMode.Cross;
                for (int i = 0; i < n; i++)
                {
                    _single[i] = OnlyReadable(_burst[i]);
                    _readers[i] = _single[i].Length == 0 ? CreateReader(_burst[i]) : default;
                }

                for (int i = 0; i < n; i++)
                {
                    int length;
                    if (_single[i].Length != 0)
                    {
                        GuestMemory memory = _burst[i].Memory!;
                        if (inPlace && TryForwardInPlace(memory, _single[i], headerSize))
                        {
                            continue;
                        }

                        // Not forwardable in place (another mode, flooded, no room, offloads to
                        // complete): copied from the one buffer, or through a reader when the
                        // buffer spans two memory regions.
                        length = ReadSingle(memory, _single[i], headerSize);
                        if (length < 0)
                        {
                            _readers[i] = CreateReader(_burst[i]);
                            length = ReadFrame(ref _readers[i], headerSize);
                        }
                    }
                    else
                    {
                        length = ReadFrame(ref _readers[i], headerSize);
                    }

                    if (length > 0)
                    {
                        OnTransmit(_frame.AsSpan(0, length));
                    }
                }

                for (int i = 0; i < n; i++)
                {
                    tx.AddUsedDeferred(_burst[i].Head, 0);
                }

                // One used.idx store per burst: the driver reclaims its buffers while the next burst is read.
                tx.PublishUsed();
                used |= n > 0;
                ThrowIfFailed(tx, used, failure);
            }
            while (n == Burst);
        }
        while (tx.EnableNotification());

        if (used)
        {
            tx.SignalUsedQueue();
        }
    }

    /// <summary>
    /// Pops up to <see cref="Burst"/> chains into <see cref="_burst"/>; with
    /// <paramref name="prefetch"/>, prefetches their first buffers, so the burst's cache misses on
    /// frames the driver wrote (on another CPU) overlap instead of being paid one chain at a time.
    /// Only for buffers the device reads (TX): .NET has no prefetch-for-write, and a read prefetch
    /// of a buffer the device then writes costs a second coherence transaction (measured: the
    /// source filled RX rings at 10 Mpps with it, 14.7 without).
    /// </summary>
    private int PopBurst(Vring ring, bool prefetch, out VirtqueueException? failure)
    {
        int n = 0;
        failure = null;
        try
        {
            while (n < Burst && ring.TryPopDescriptorChain(out _burst[n]))
            {
                n++;
            }
        }
        catch (VirtqueueException e)
        {
            failure = e;
        }

        for (int i = 0; prefetch && i < n; i++)
        {
            _burst[i].Prefetch();
        }

        return n;
    }

    /// <summary>After a burst's chains were returned, rethrows the ring error that ended it (the worker then reports the broken queue).</summary>
    private static void ThrowIfFailed(Vring ring, bool used, VirtqueueException? failure)
    {
        if (failure is null)
        {
            return;
        }

        if (used)
        {
            ring.SignalUsedQueue();
        }

        ExceptionDispatchInfo.Throw(failure);
    }

    /// <summary>
    /// A reader over a TX chain (creating it walks and validates the chain), or a default (empty)
    /// one for a malformed chain, which <see cref="ReadFrame"/> then counts as an error.
    /// </summary>
    private static DescriptorChainReader CreateReader(in DescriptorChain chain)
    {
        try
        {
            return chain.CreateReader();
        }
        catch (VhostException)
        {
            return default;
        }
    }

    /// <summary>A TX chain's only buffer when the chain is one readable descriptor (header and frame contiguous, what DPDK's virtio PMD posts); otherwise a default (length 0).</summary>
    private static VirtqBuffer OnlyReadable(in DescriptorChain chain)
    {
        try
        {
            if (chain.TryGetSingleBuffer(out VirtqBuffer only) && !only.IsWriteOnly)
            {
                return only;
            }
        }
        catch (VhostException)
        {
            // The reader's walk finds the fault again and counts the frame as an error.
        }

        return default;
    }

    /// <summary>
    /// Forwards a frame with one copy: from the sender's TX buffer <paramref name="buffer"/>
    /// (header and frame, read in place) straight into the receiving port's next RX buffer, when
    /// that port is served by this thread, its destination is one port (learned unicast in switch
    /// mode, the wired port in cross mode), and the receiver's next RX chain is one writable buffer
    /// that holds it. DPDK's vhost PMD copies twice (guest → mbuf → guest).
    /// </summary>
    /// <returns>True when the frame was forwarded (or dropped as addressed to its own port); false when the copying path must take it.</returns>
    private bool TryForwardInPlace(GuestMemory memory, VirtqBuffer buffer, int headerSize)
    {
        int total = (int)Math.Min(buffer.Length, (uint)int.MaxValue);
        if (!IsEntrySize((ulong)total, headerSize)
            || !memory.TryGetSpan(buffer.Address, total, out Span<byte> tx))
        {
            return false;
        }

        ReadOnlySpan<byte> frame = tx[headerSize..];
        int port;
        if (_fabric.Mode == NetMode.Cross)
        {
            port = Index ^ 1;
        }
        else
        {
            ReadOnlySpan<byte> destination = frame[..6];
            if (MacTable.IsGroup(destination))
            {
                return false;
            }

            ReadOnlySpan<byte> source = frame[6..12];
            if (!MacTable.IsGroup(source))
            {
                _fabric.Table.Learn(MacTable.Key(source), Index);
            }

            port = _fabric.Table.Lookup(MacTable.Key(destination));
            if (port < 0)
            {
                return false;
            }
        }

        if (port != Index && !_fabric.Ports[port].TryReceiveInPlace(tx[..headerSize], frame))
        {
            return false;
        }

        if (port != Index)
        {
            _signalPending[port] = true;
        }

        Counters.TxFrames++;
        Counters.TxBytes += frame.Length;
        return true;
    }

    /// <summary>
    /// The receiving side of <see cref="TryForwardInPlace"/>: writes the sender's header, adapted to
    /// this driver, and <paramref name="frame"/> into this port's next RX chain when that is one
    /// writable buffer that holds them, this thread serves the ring, and nothing is queued before
    /// them. A chain of another shape is held for the general path.
    /// </summary>
    /// <returns>False when the sender must take the copying path (nothing delivered).</returns>
    private bool TryReceiveInPlace(ReadOnlySpan<byte> senderHeader, ReadOnlySpan<byte> frame)
    {
        Vring[]? rings = Volatile.Read(ref _rings);
        if (rings is null || _fabric.Mode == NetMode.Source || !Inbound.IsEmpty)
        {
            return false;
        }

        int pair = PickPair(rings, frame);
        if (pair < 0 || !rings[2 * pair].IsServedByCurrentThread)
        {
            return false;
        }

        Vring ring = rings[2 * pair];
        RxQueueState rx = _rx[pair];
        ValidateHeld(ring, rx);
        if (rx.Count != 0)
        {
            return false;
        }

        // The header alone (no frame): a checksum to complete needs the frame and the copying path.
        Span<byte> header = stackalloc byte[VirtioNetHeader.Size];
        header.Clear();
        senderHeader.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header[VirtioNetHeader.NumBuffersOffset..], 0);
        if (!PrepareForReceiver(header, AckedFeatures))
        {
            return false;
        }

        int headerSize = HeaderSize;
        uint needed = (uint)(headerSize + frame.Length);
        if (!TryTakeSingle(ring, rx, needed, out ushort head, out Span<byte> target))
        {
            return false;
        }

        ToWire(header, headerSize, 1).CopyTo(target);
        frame.CopyTo(target[headerSize..]);

        // Published with the burst, by the signal (SignalDelivered): one used.idx store per burst.
        ring.AddUsedDeferred(head, needed);
        rx.NeedsSignal = true;
        CountDelivered(frame.Length);
        return true;
    }

    /// <summary>
    /// Pops the driver's next RX chain when it is one writable buffer that holds
    /// <paramref name="needed"/> bytes (<paramref name="target"/>: that buffer in guest memory). A
    /// chain of another shape is held for the general path (false), as is one with no writable bytes
    /// returned empty and skipped; false too when the ring has no chain.
    /// </summary>
    private static bool TryTakeSingle(Vring ring, RxQueueState rx, uint needed, out ushort head, out Span<byte> target)
    {
        while (ring.TryPopDescriptorChain(out DescriptorChain chain))
        {
            VirtqBuffer only = FirstWritableHolding(chain, (int)needed);
            if (only.Length != 0 && chain.Memory!.TryGetSpan(only.Address, (int)needed, out target))
            {
                head = chain.Head;
                return true;
            }

            if (Hold(ring, rx, chain))
            {
                break;
            }
        }

        head = 0;
        target = default;
        return false;
    }

    /// <summary>Whether <paramref name="total"/> bytes on a TX chain (header and frame) make an entry: an Ethernet header at least, and room for the 12-byte header form.</summary>
    private static bool IsEntrySize(ulong total, int headerSize)
        => total >= (ulong)(headerSize + Responder.EthernetHeaderSize) && total <= (ulong)(MaxEntrySize - (VirtioNetHeader.Size - headerSize));

    /// <summary>
    /// Copies a TX chain's only buffer (header and frame, validated by the pop) into
    /// <see cref="_frame"/> as a 12-byte header and the frame, without a reader's walk.
    /// </summary>
    /// <returns>The entry length; 0 when its size is out of range (counted); -1 when the buffer is not contiguous in this process (it spans two regions): the reader takes it.</returns>
    private int ReadSingle(GuestMemory memory, VirtqBuffer buffer, int headerSize)
    {
        int start = VirtioNetHeader.Size - headerSize;
        if (!IsEntrySize(buffer.Length, headerSize))
        {
            Counters.TxErrors++;
            return 0;
        }

        if (!memory.TryGetSpan(buffer.Address, (int)buffer.Length, out Span<byte> source))
        {
            return -1;
        }

        source.CopyTo(_frame.AsSpan(start));
        return FinishFrame((int)buffer.Length, headerSize);
    }

    /// <summary>Copies a TX chain's readable bytes into <see cref="_frame"/> as a 12-byte header and the frame.</summary>
    /// <returns>The entry length, or 0 when the chain was malformed or its size out of range (counted).</returns>
    private int ReadFrame(ref DescriptorChainReader reader, int headerSize)
    {
        int start = VirtioNetHeader.Size - headerSize;
        ulong total = reader.Remaining;
        if (!IsEntrySize(total, headerSize))
        {
            // Too short, too long, or malformed (a default reader is empty).
            Counters.TxErrors++;
            return 0;
        }

        try
        {
            reader.ReadExactly(_frame.AsSpan(start, (int)total));
        }
        catch (VhostException)
        {
            // The chain went bad under a second walk: return it, drop the frame.
            Counters.TxErrors++;
            return 0;
        }

        return FinishFrame((int)total, headerSize);
    }

    /// <summary>Turns the <paramref name="total"/> bytes copied at <c>12 - headerSize</c> into an entry: a 12-byte header and the frame.</summary>
    private int FinishFrame(int total, int headerSize)
    {
        if (total < headerSize + Responder.EthernetHeaderSize)
        {
            Counters.TxErrors++;
            return 0;
        }

        int start = VirtioNetHeader.Size - headerSize;
        if (start != 0)
        {
            _frame.AsSpan(start, headerSize).CopyTo(_frame);
        }

        // num_buffers means nothing on TX; it is set per receiver.
        BinaryPrimitives.WriteUInt16LittleEndian(_frame.AsSpan(10), 0);
        int entry = VirtioNetHeader.Size + total - headerSize;
        Counters.TxFrames++;
        Counters.TxBytes += entry - VirtioNetHeader.Size;
        return entry;
    }

    private void OnTransmit(Span<byte> entry)
    {
        ReadOnlySpan<byte> frame = entry[VirtioNetHeader.Size..];
        switch (_fabric.Mode)
        {
            case NetMode.Responder:
                int n = Responder.TryBuildReply(frame, _reply.AsSpan(VirtioNetHeader.Size), _fabric.Mac, _fabric.IP);
                if (n > 0)
                {
                    _reply.AsSpan(0, VirtioNetHeader.Size).Clear();
                    Forward(Index, _reply.AsSpan(0, VirtioNetHeader.Size + n));
                }

                break;

            case NetMode.Switch:
                ReadOnlySpan<byte> destination = frame[..6];
                ReadOnlySpan<byte> source = frame[6..12];
                if (!MacTable.IsGroup(source))
                {
                    _fabric.Table.Learn(MacTable.Key(source), Index);
                }

                if (!MacTable.IsGroup(destination))
                {
                    int port = _fabric.Table.Lookup(MacTable.Key(destination));
                    if (port == Index)
                    {
                        return;
                    }

                    if (port >= 0)
                    {
                        ForwardOne(port, entry);
                        return;
                    }
                }

                NetPort[] ports = _fabric.Ports;
                for (int p = 0; p < ports.Length; p++)
                {
                    if (p != Index)
                    {
                        Forward(p, entry);
                    }
                }

                break;

            case NetMode.Cross:
                // Port 2k and 2k+1 are wired to each other (the port count is even).
                ForwardOne(Index ^ 1, entry);
                break;

            case NetMode.Sink:
                ReadHeaders(frame);
                break;

            default:
                // Source: transmitted frames are dropped.
                break;
        }
    }

    /// <summary>
    /// Sink mode: reads what a switch reads of each frame before dropping it: both MAC addresses as
    /// table keys and the EtherType, and for IPv4 the version, protocol and both addresses (a flow
    /// key). The result is folded into <see cref="_sinkDigest"/> only so the reads stay.
    /// </summary>
    private void ReadHeaders(ReadOnlySpan<byte> frame)
    {
        ulong key = MacTable.Key(frame) ^ (MacTable.Key(frame[6..]) << 16);
        if ((EtherType)BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherType.IPv4
            && frame.Length >= Responder.EthernetHeaderSize + 20
            && (frame[Responder.EthernetHeaderSize] >> 4) == 4)
        {
            ReadOnlySpan<byte> ip = frame[Responder.EthernetHeaderSize..];
            key ^= ip[9] ^ ((ulong)BinaryPrimitives.ReadUInt32BigEndian(ip[12..]) << 8) ^ ((ulong)BinaryPrimitives.ReadUInt32BigEndian(ip[16..]) << 32);
        }

        _sinkDigest += key;
    }

    /// <summary>Sends a frame to one port: straight into its RX ring when this thread serves it, else through its queue.</summary>
    private void ForwardOne(int port, Span<byte> entry)
    {
        if (_fabric.Ports[port].TryDeliverHere(entry))
        {
            _signalPending[port] = true;
        }
        else
        {
            Forward(port, entry);
        }
    }

    private void Forward(int port, ReadOnlySpan<byte> entry)
    {
        NetPort target = _fabric.Ports[port];
        if (target.Inbound.TryEnqueue(entry))
        {
            _wakePending[port] = true;
        }
        else
        {
            Interlocked.Increment(ref target.Counters.RxDropped);
        }
    }

    /// <summary>
    /// Delivers a frame into this port's RX ring at once, when the calling thread serves that ring
    /// (the ports share a worker thread) and no frame is queued before it: the frame goes from the
    /// sender's TX buffers to this guest's RX buffers with no queue copy and no wake-up.
    /// <paramref name="entry"/> (the sender's frame) is adapted to this driver's features in place.
    /// </summary>
    /// <returns>False when the caller must queue the frame instead.</returns>
    public bool TryDeliverHere(Span<byte> entry)
    {
        Vring[]? rings = Volatile.Read(ref _rings);
        if (rings is null || _fabric.Mode == NetMode.Source || !Inbound.IsEmpty)
        {
            return false;
        }

        int pair = PickPair(rings, entry[VirtioNetHeader.Size..]);
        if (pair < 0 || !rings[2 * pair].IsServedByCurrentThread)
        {
            return false;
        }

        return TryDeliver(rings[2 * pair], _rx[pair], entry);
    }

    /// <summary>Notifies this port's driver of what <see cref="TryDeliverHere"/> delivered (the serving thread).</summary>
    public void SignalDelivered()
    {
        Vring[]? rings = Volatile.Read(ref _rings);
        if (rings is null)
        {
            return;
        }

        for (int pair = 0; pair < _pairs; pair++)
        {
            if (_rx[pair].NeedsSignal)
            {
                _rx[pair].NeedsSignal = false;
                rings[2 * pair].SignalUsedQueue();
            }
        }
    }

    private void WakePeers()
    {
        for (int p = 0; p < _signalPending.Length; p++)
        {
            if (_signalPending[p])
            {
                _signalPending[p] = false;
                _fabric.Ports[p].SignalDelivered();
            }
        }

        for (int p = 0; p < _wakePending.Length; p++)
        {
            if (_wakePending[p])
            {
                _wakePending[p] = false;
                if (p != Index)
                {
                    _fabric.Ports[p].Wake();
                }
            }
        }
    }

    private void DeliverInbound(ReadOnlySpan<Vring> vrings)
    {
        while (Inbound.TryPeek(out Span<byte> entry))
        {
            int pair = PickPair(vrings, entry[VirtioNetHeader.Size..]);
            if (pair < 0)
            {
                // No ready RX ring (no front-end, or it is starting): the frame is dropped, as by a NIC that is down.
                Interlocked.Increment(ref Counters.RxDropped);
                Inbound.Advance();
                continue;
            }

            if (!TryDeliver(vrings[2 * pair], _rx[pair], entry))
            {
                // Not enough RX buffers: wait for the driver's kick (notifications are enabled).
                break;
            }

            Inbound.Advance();
        }

        for (int pair = 0; pair < _pairs; pair++)
        {
            if (_rx[pair].NeedsSignal)
            {
                _rx[pair].NeedsSignal = false;
                vrings[2 * pair].SignalUsedQueue();
            }
        }
    }

    private int PickPair(ReadOnlySpan<Vring> vrings, ReadOnlySpan<byte> frame)
    {
        // Keep one flow (source MAC) on one RX queue.
        int start = _pairs == 1 ? 0 : (int)((uint)BinaryPrimitives.ReadUInt32BigEndian(frame.Slice(8, 4)) % (uint)_pairs);
        for (int k = 0; k < _pairs; k++)
        {
            int pair = (start + k) % _pairs;
            if (vrings[2 * pair].IsReady)
            {
                return pair;
            }
        }

        return -1;
    }

    /// <summary>Writes one queued entry into <paramref name="ring"/>.</summary>
    /// <returns>False when the ring has too few buffers (the entry stays queued); true when it was delivered or dropped.</returns>
    private bool TryDeliver(Vring ring, RxQueueState rx, Span<byte> entry)
    {
        ValidateHeld(ring, rx);
        VirtioNetFeatures acked = AckedFeatures;
        bool mergeable = (acked & VirtioNetFeatures.MergeableRxBuffers) != 0;
        int headerSize = HeaderSize;
        uint needed = (uint)(entry.Length - VirtioNetHeader.Size + headerSize);
        if (rx.Count == 0 && TryDeliverSingle(ring, rx, entry, acked, headerSize, needed))
        {
            return true;
        }

        // Take chains until the frame fits (one chain without MRG_RXBUF).
        int chains = 0;
        uint capacity = 0;
        while (capacity < needed)
        {
            if (chains == rx.Count)
            {
                if (!mergeable && chains == 1)
                {
                    break;
                }

                if (rx.Count == RxQueueState.MaxChains)
                {
                    break;
                }

                if (!TryTakeChain(ring, rx))
                {
                    if (ring.EnableNotification())
                    {
                        continue; // buffers arrived meanwhile
                    }

                    return false;
                }
            }

            capacity += (uint)rx.Writers[chains].Remaining;
            chains++;
        }

        if (capacity < needed || !PrepareForReceiver(entry, acked))
        {
            // Larger than the driver's buffers, or offloads it cannot take: dropped; the chains stay for the next frame.
            Interlocked.Increment(ref Counters.RxDropped);
            return true;
        }

        Span<byte> wire = ToWire(entry, headerSize, (ushort)chains);
        int written = 0;
        try
        {
            for (int c = 0; c < chains; c++)
            {
                // The writer logs what it writes while the front-end logs dirty pages.
                ref DescriptorChainWriter writer = ref rx.Writers[c];
                written += writer.Write(wire[written..]);
                rx.Written[c] = writer.BytesWritten;
            }
        }
        catch (VhostException)
        {
            // The chains went bad under us (a hostile driver): return them empty, drop the frame.
            for (int c = 0; c < chains; c++)
            {
                rx.Written[c] = 0;
            }

            Interlocked.Increment(ref Counters.RxDropped);
        }

        for (int c = 0; c < chains; c++)
        {
            ring.AddUsed(rx.Writers[c].Chain.Head, rx.Written[c]);
        }

        rx.RemoveFirst(chains);
        rx.NeedsSignal = true;
        if (written == wire.Length)
        {
            CountDelivered(entry.Length - VirtioNetHeader.Size);
        }

        return true;
    }

    /// <summary>
    /// The wire form of an entry for this port's driver, in place: 10 or 12 header bytes, then the
    /// frame, contiguous at the end of <paramref name="entry"/>; the 12-byte form carries
    /// <paramref name="buffers"/> as num_buffers.
    /// </summary>
    private static Span<byte> ToWire(Span<byte> entry, int headerSize, ushort buffers)
    {
        Span<byte> wire = entry[(VirtioNetHeader.Size - headerSize)..];
        if (headerSize == VirtioNetHeader.LegacySize)
        {
            entry[..VirtioNetHeader.LegacySize].CopyTo(wire);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(wire[VirtioNetHeader.NumBuffersOffset..], buffers);
        }

        return wire;
    }

    /// <summary>Counts a frame of <paramref name="frameBytes"/> delivered whole into this port's RX ring.</summary>
    private void CountDelivered(int frameBytes)
    {
        Counters.RxFrames++;
        Counters.RxBytes += frameBytes;
    }

    /// <summary>
    /// Forgets held chains the ring no longer has in flight. The daemon has them put back
    /// (<see cref="UnpopHeldChains"/>) before every stop, reset and memory change; only a ring the
    /// guest broke is stopped without that, and its chains are abandoned (the ring's in-flight count
    /// starts over). The held chains are the only RX chains in flight (the others are completed as
    /// soon as they are filled), so fewer in flight than held means they are gone. An enable change
    /// keeps them: the ring still runs.
    /// </summary>
    private static void ValidateHeld(Vring ring, RxQueueState rx)
    {
        if (rx.Count > ring.InFlight)
        {
            rx.Count = 0;
        }
    }

    /// <summary>Pops one RX chain and measures it; malformed chains are returned empty and skipped.</summary>
    private static bool TryTakeChain(Vring ring, RxQueueState rx)
    {
        while (ring.TryPopDescriptorChain(out DescriptorChain chain))
        {
            if (Hold(ring, rx, chain))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Holds a popped RX chain behind a writer; a chain with no writable bytes (or an invalid one) is returned empty at once.</summary>
    /// <returns>Whether the chain is now held.</returns>
    private static bool Hold(Vring ring, RxQueueState rx, in DescriptorChain chain)
    {
        DescriptorChainWriter writer;
        try
        {
            writer = chain.CreateWriter();
        }
        catch (VirtqueueException)
        {
            writer = default;
        }

        if (writer.Remaining == 0)
        {
            ring.AddUsed(chain.Head, 0);
            rx.NeedsSignal = true;
            return false;
        }

        rx.Writers[rx.Count] = writer;
        rx.Count++;
        return true;
    }

    /// <summary>
    /// The usual case on a busy port: no chain held, and the driver's next RX chain is one
    /// writable buffer that holds the frame (what DPDK's virtio PMD and Linux with MRG_RXBUF
    /// post). The frame goes straight into guest memory, with no <see cref="DescriptorChainWriter"/>
    /// (measured: creating and holding a writer per frame was the largest single cost of
    /// port-to-port forwarding, docs/performance.md). Any other chain is held for the general path.
    /// No dirty mark here: the ring marks the used length of the chain's writable buffers.
    /// </summary>
    /// <returns>True when the frame was delivered or dropped; false when the general path goes on (with the chain taken, if any, held).</returns>
    private bool TryDeliverSingle(Vring ring, RxQueueState rx, Span<byte> entry, VirtioNetFeatures acked, int headerSize, uint needed)
    {
        if (!PrepareForReceiver(entry, acked))
        {
            // Offloads the driver cannot take: dropped (no chain taken).
            Interlocked.Increment(ref Counters.RxDropped);
            return true;
        }

        if (!TryTakeSingle(ring, rx, needed, out ushort head, out Span<byte> target))
        {
            return false;
        }

        ToWire(entry, headerSize, 1).CopyTo(target);

        // Published with the burst, by the signal that NeedsSignal asks for.
        ring.AddUsedDeferred(head, needed);
        rx.NeedsSignal = true;
        CountDelivered(entry.Length - VirtioNetHeader.Size);
        return true;
    }

    /// <summary>Adapts the header to what the receiving driver negotiated; false when it cannot take the frame.</summary>
    private static bool PrepareForReceiver(Span<byte> entry, VirtioNetFeatures acked)
    {
        var flags = (VirtioNetHeaderFlags)entry[0];
        var gso = (VirtioNetGsoType)entry[1];
        var gsoKind = gso & ~VirtioNetGsoType.Ecn;
        if (gsoKind != VirtioNetGsoType.None)
        {
            VirtioNetFeatures required = gsoKind switch
            {
                VirtioNetGsoType.TcpV4 => VirtioNetFeatures.GuestTso4,
                VirtioNetGsoType.TcpV6 => VirtioNetFeatures.GuestTso6,
                VirtioNetGsoType.Udp => VirtioNetFeatures.GuestUfo,
                _ => (VirtioNetFeatures)ulong.MaxValue,
            };
            if ((gso & VirtioNetGsoType.Ecn) != 0)
            {
                required |= VirtioNetFeatures.GuestEcn;
            }

            if ((acked & required) != required)
            {
                return false;
            }
        }

        if ((flags & VirtioNetHeaderFlags.NeedsCsum) != 0 && (acked & VirtioNetFeatures.GuestCsum) == 0)
        {
            if (gsoKind != VirtioNetGsoType.None)
            {
                return false;
            }

            // Complete the partial checksum: the field holds the pseudo-header sum already.
            Span<byte> frame = entry[VirtioNetHeader.Size..];
            int start = BinaryPrimitives.ReadUInt16LittleEndian(entry[6..]);
            int offset = BinaryPrimitives.ReadUInt16LittleEndian(entry[8..]);
            if (start + offset + 2 > frame.Length)
            {
                return false;
            }

            ushort checksum = InternetChecksum.Compute(frame[start..]);
            if (checksum == 0 && offset == 6)
            {
                checksum = 0xFFFF; // UDP sends a computed zero as all ones
            }

            BinaryPrimitives.WriteUInt16BigEndian(frame[(start + offset)..], checksum);
            flags &= ~VirtioNetHeaderFlags.NeedsCsum;
        }

        // Only NEEDS_CSUM and DATA_VALID mean something to a receiver.
        entry[0] = (byte)(flags & (VirtioNetHeaderFlags.NeedsCsum | VirtioNetHeaderFlags.DataValid));
        return true;
    }

    private void FillFromSource(ReadOnlySpan<Vring> vrings)
    {
        int headerSize = HeaderSize;
        ReadOnlySpan<byte> wire = headerSize == VirtioNetHeader.Size ? _source.Template : _source.LegacyTemplate;
        for (int pair = 0; pair < _pairs; pair++)
        {
            Vring ring = vrings[2 * pair];
            if (!ring.IsReady)
            {
                continue;
            }

            bool used = false;
            do
            {
                ring.DisableNotification();
                int n;
                do
                {
                    n = PopBurst(ring, prefetch: false, out VirtqueueException? failure);

                    // Walk every chain of the burst, then write every frame, then complete every
                    // chain: the writes' cache misses drain together, and no descriptor walk
                    // (whose enumerator copy cannot be store-forwarded) waits behind them.
                    for (int i = 0; i < n; i++)
                    {
                        _single[i] = FirstWritableHolding(_burst[i], wire.Length);
                    }

                    for (int i = 0; i < n; i++)
                    {
                        // The usual RX chain (one writable buffer that holds the frame) takes the
                        // span path; any other chain goes through a DescriptorChainWriter. Measured:
                        // the writer on every chain took enqueue from 79 to 177 ns per packet
                        // (docs/performance.md). Dirty logging is the ring's, at AddUsedDeferred.
                        VirtqBuffer only = _single[i];
                        uint sequence = _sourceSequence++;
                        if (only.Length != 0 && (_written[i] = WriteSingle(_source, _burst[i].Memory!, only.Address, wire, sequence)) != 0)
                        {
                            continue;
                        }

                        _writers[i] = CreateWriter(_burst[i]);
                        _written[i] = WriteSource(_source, ref _writers[i], wire, sequence);
                    }

                    for (int i = 0; i < n; i++)
                    {
                        uint written = _written[i];
                        ring.AddUsedDeferred(_burst[i].Head, written);
                        if (written != 0)
                        {
                            Counters.RxFrames++;
                            Counters.RxBytes += wire.Length - headerSize;
                        }
                        else
                        {
                            Counters.RxDropped++;
                        }
                    }

                    ring.PublishUsed();
                    used |= n > 0;
                    ThrowIfFailed(ring, used, failure);
                }
                while (n == Burst);
            }
            while (ring.EnableNotification());

            if (used)
            {
                ring.SignalUsedQueue();
            }
        }
    }

    /// <summary>The usual RX chain's only buffer when it is writable and holds <paramref name="length"/> bytes; otherwise a default (length 0) for the writer's general path.</summary>
    private static VirtqBuffer FirstWritableHolding(in DescriptorChain chain, int length)
    {
        try
        {
            // One descriptor (what DPDK's virtio PMD and Linux with MRG_RXBUF post).
            if (chain.TryGetSingleBuffer(out VirtqBuffer only) && only.IsWriteOnly && only.Length >= (uint)length)
            {
                return only;
            }
        }
        catch (VhostException)
        {
            // The general path validates the chain again and returns it empty.
        }

        return default;
    }

    /// <summary>
    /// Builds source frame <paramref name="sequence"/> (<paramref name="wire"/>: its template) at a
    /// buffer validated by <see cref="FirstWritableHolding"/>, straight into guest memory (see
    /// <see cref="SourceFrame"/>). No dirty mark here: the ring marks the used length of the chain's
    /// writable buffers when the element is added (<see cref="Vring.AddUsedDeferred"/>).
    /// </summary>
    private static uint WriteSingle(SourceFrame source, GuestMemory memory, ulong address, ReadOnlySpan<byte> wire, uint sequence)
    {
        try
        {
            if (memory.TryGetSpan(address, wire.Length, out Span<byte> destination))
            {
                source.Write(destination, wire, sequence);
                return (uint)wire.Length;
            }
        }
        catch (VhostException)
        {
        }

        return 0;
    }

    /// <summary>A writer over an RX chain (creating it walks and validates the chain), or a default (no room) one for a malformed chain.</summary>
    private static DescriptorChainWriter CreateWriter(in DescriptorChain chain)
    {
        try
        {
            return chain.CreateWriter();
        }
        catch (VhostException)
        {
            return default;
        }
    }

    /// <summary>Builds source frame <paramref name="sequence"/> (<paramref name="wire"/>: its template) into the chain when it fits.</summary>
    /// <returns>Bytes written: all of them, or 0 when the chain is too small or malformed.</returns>
    /// <remarks>
    /// When the first buffer holds the frame in one piece it is built there, straight into guest
    /// memory; otherwise on the stack, then copied through the writer. The writer logs the bytes.
    /// </remarks>
    private static uint WriteSource(SourceFrame source, ref DescriptorChainWriter writer, ReadOnlySpan<byte> wire, uint sequence)
    {
        if (writer.Remaining < (ulong)wire.Length)
        {
            return 0;
        }

        try
        {
            if (writer.TryGetSpan(out Span<byte> destination) && destination.Length >= wire.Length)
            {
                source.Write(destination, wire, sequence);
                writer.Commit((ulong)wire.Length);
            }
            else
            {
                Span<byte> frame = stackalloc byte[wire.Length];
                source.Write(frame, wire, sequence);
                writer.WriteExactly(frame);
            }

            return writer.BytesWritten;
        }
        catch (VhostException)
        {
            return 0;
        }
    }
}
