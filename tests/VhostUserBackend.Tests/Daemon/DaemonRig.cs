using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Daemon;

/// <summary>The guest driver of one ring, split or packed.</summary>
internal interface IRingDriver
{
    ushort Size { get; }

    ulong DescriptorAddress { get; }

    ulong DriverAreaAddress { get; }

    ulong DeviceAreaAddress { get; }

    int FreeDescriptors { get; }

    ushort Add(ReadOnlySpan<VirtqBuffer> buffers);

    void Publish();

    bool NeedsKick();

    bool TryGetUsed(out ushort id, out uint length);

    bool EnableInterrupts();
}

internal sealed class SplitDriver(SplitQueueDriver d) : IRingDriver
{
    public SplitQueueDriver Inner => d;

    public ushort Size => d.Size;

    public ulong DescriptorAddress => d.DescriptorTableAddress;

    public ulong DriverAreaAddress => d.AvailRingAddress;

    public ulong DeviceAreaAddress => d.UsedRingAddress;

    public int FreeDescriptors => d.FreeDescriptors;

    public ushort Add(ReadOnlySpan<VirtqBuffer> buffers) => d.AddBuffers(buffers);

    public void Publish() => d.Publish();

    public bool NeedsKick() => d.NeedsKick();

    public bool TryGetUsed(out ushort id, out uint length) => d.TryGetUsed(out id, out length);

    public bool EnableInterrupts() => d.EnableInterrupts();
}

internal sealed class PackedDriver(PackedQueueDriver d) : IRingDriver
{
    public ushort Size => d.Size;

    public ulong DescriptorAddress => d.DescriptorRingAddress;

    public ulong DriverAreaAddress => d.DriverEventAddress;

    public ulong DeviceAreaAddress => d.DeviceEventAddress;

    public int FreeDescriptors => d.FreeDescriptors;

    public ushort Add(ReadOnlySpan<VirtqBuffer> buffers) => d.AddBuffers(buffers);

    public void Publish()
    {
    }

    public bool NeedsKick() => d.NeedsKick();

    public bool TryGetUsed(out ushort id, out uint length) => d.TryGetUsed(out id, out length);

    public bool EnableInterrupts() => d.EnableInterrupts();
}

/// <summary>One queue as the test (guest driver + VMM) sees it.</summary>
internal sealed class RigQueue : IDisposable
{
    public const int SlotBytes = 512;

    public required IRingDriver Driver { get; init; }

    public required EventFd Kick { get; init; }

    public required EventFd Call { get; init; }

    public required EventFd Error { get; init; }

    public required ulong BufferBase { get; init; }

    public int NextSlot;

    /// <summary>Buffer id → (slot, payload) of requests in flight.</summary>
    public Dictionary<ushort, (int Slot, byte[] Payload)> InFlight { get; } = [];

    public void Dispose()
    {
        Kick.Dispose();
        Call.Dispose();
        Error.Dispose();
    }
}

/// <summary>
/// A daemon serving <see cref="CopyDevice"/> over a real socket, driven by
/// <see cref="VhostUserFrontend"/> with memfd guest RAM and eventfds: the test is QEMU and the guest.
/// </summary>
internal sealed class DaemonRig : IDisposable
{
    private readonly bool _ownsDaemon;

    public DaemonRig(CopyDevice device, VhostUserDaemon? daemon = null, string? socketPath = null, ulong ramSize = 4 << 20, (ulong GuestPhysicalAddress, ulong Size)[]? layout = null)
    {
        Device = device;
        SocketPath = socketPath ?? NewSocketPath();
        Ram = layout is null ? GuestRam.Create(ramSize) : GuestRam.Create(layout);
        if (daemon is null)
        {
            Daemon = new VhostUserDaemon(device);
            Daemon.Start(SocketPath);
            _ownsDaemon = true;
        }
        else
        {
            Daemon = daemon;
        }
    }

    public CopyDevice Device { get; }

    public VhostUserDaemon Daemon { get; set; }

    public string SocketPath { get; set; }

    public GuestRam Ram { get; }

    public VhostUserFrontend? Frontend { get; private set; }

    public List<RigQueue> Queues { get; } = [];

    public ulong AckedFeatures { get; private set; }

    public VhostUserProtocolFeatures ProtocolFeatures { get; private set; }

    public static string NewSocketPath() => Path.Combine(Path.GetTempPath(), $"vud-{Guid.NewGuid():N}.sock");

    public ulong UserAddress(ulong gpa)
    {
        foreach (GuestRamRegion r in Ram.Regions)
        {
            if (gpa >= r.GuestPhysicalAddress && gpa - r.GuestPhysicalAddress < r.Size)
            {
                return r.UserAddress + (gpa - r.GuestPhysicalAddress);
            }
        }

        throw new ArgumentOutOfRangeException(nameof(gpa));
    }

    public IReadOnlyList<VhostMemoryRegionInfo> MemoryRegions()
        => [.. Ram.Regions.Select(r => new VhostMemoryRegionInfo(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset, Ram.FileHandle))];

    /// <summary>Region <paramref name="index"/> of the RAM as a front-end describes it.</summary>
    public VhostMemoryRegionInfo RegionInfo(int index)
    {
        GuestRamRegion r = Ram.Regions[index];
        return new VhostMemoryRegionInfo(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset, Ram.FileHandle);
    }

    /// <summary>Moves the RAM's bump allocator to the start of region <paramref name="index"/> (what follows is allocated there).</summary>
    public void AllocateFromRegion(int index)
    {
        ulong start = Ram.Regions[index].GuestPhysicalAddress;
        ulong page = (ulong)Environment.SystemPageSize;
        while (true)
        {
            ulong a = Ram.Allocate(page, page);
            if (a >= start)
            {
                Assert.Equal(start, a);
                return;
            }
        }
    }

    /// <summary>
    /// Connects and negotiates as QEMU does (vhost_user_backend_init + vhost_dev_init); with
    /// <paramref name="accepted"/>, negotiates on that front-end instead (the daemon connected to it: client mode).
    /// </summary>
    public VhostUserFrontend Connect(bool eventIdx, bool packed, VhostUserProtocolFeatures extraProtocolFeatures = VhostUserProtocolFeatures.None, VhostUserProtocolFeatures withoutProtocolFeatures = VhostUserProtocolFeatures.None, VhostUserFrontend? accepted = null)
    {
        VhostUserFrontend f = accepted ?? VhostUserFrontend.Connect(SocketPath, TimeSpan.FromSeconds(5));
        Frontend = f;
        ulong offered = f.GetFeatures();
        Assert.NotEqual(0UL, offered & (ulong)VhostUserVirtioFeatures.ProtocolFeatures);
        VhostUserProtocolFeatures protocol = f.GetProtocolFeatures();
        ProtocolFeatures = protocol & ~withoutProtocolFeatures & (VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ConfigureMemorySlots
            | VhostUserProtocolFeatures.InflightShmFd | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.Status
            | VhostUserProtocolFeatures.LogShmFd | VhostUserProtocolFeatures.ResetDevice | extraProtocolFeatures);
        f.SetProtocolFeatures(ProtocolFeatures);
        Assert.Equal(Device.QueueCount, f.GetQueueNum());
        if ((ProtocolFeatures & VhostUserProtocolFeatures.ConfigureMemorySlots) != 0)
        {
            Assert.Equal(VhostUserLimits.MaxMemorySlots, f.GetMaxMemorySlots());
        }
        f.SetOwner();
        ulong acked = (ulong)VirtioFeatures.Version1 | (ulong)VhostUserVirtioFeatures.ProtocolFeatures
            | (eventIdx ? (ulong)VirtioFeatures.RingEventIndex : 0)
            | (packed ? (ulong)VirtioFeatures.RingPacked : 0);
        f.SetFeatures(acked);
        AckedFeatures = acked;
        return f;
    }

    /// <summary>vhost_dev_start: memory table, optional inflight region, every ring, enable, status.</summary>
    public void Start(bool eventIdx, bool packed, ushort size = 64, (VhostUserInflight Description, Microsoft.Win32.SafeHandles.SafeFileHandle Fd)? inflight = null, bool freshDrivers = true,
        IReadOnlyList<VhostMemoryRegionInfo>? memoryTable = null, Action<int>? beforeQueue = null)
    {
        VhostUserFrontend f = Frontend!;
        f.SetMemoryTable(memoryTable ?? MemoryRegions());
        if (inflight is { } given)
        {
            f.SetInflightFd(given.Description, given.Fd);
        }

        for (int q = 0; q < Device.QueueCount; q++)
        {
            beforeQueue?.Invoke(q);
            if (freshDrivers)
            {
                IRingDriver driver = packed
                    ? new PackedDriver(new PackedQueueDriver(Ram, size, eventIdx))
                    : new SplitDriver(new SplitQueueDriver(Ram, size, eventIdx));
                Queues.Add(new RigQueue
                {
                    Driver = driver,
                    Kick = new EventFd(),
                    Call = new EventFd(EventFdFlags.NonBlocking),
                    Error = new EventFd(EventFdFlags.NonBlocking),
                    BufferBase = Ram.Allocate((ulong)size * 2 * RigQueue.SlotBytes, 64),
                });
            }

            StartQueue(q, packed);
        }

        for (int q = 0; q < Device.QueueCount; q++)
        {
            f.SetVringEnable(q, true);
        }

        if ((ProtocolFeatures & VhostUserProtocolFeatures.Status) != 0)
        {
            f.SetStatus(0x0F);
        }
    }

    public void StartQueue(int q, bool packed, uint? baseValue = null)
    {
        VhostUserFrontend f = Frontend!;
        RigQueue rq = Queues[q];
        IRingDriver d = rq.Driver;
        f.SetVringNum(q, d.Size);
        f.SetVringBase(q, baseValue ?? (packed ? (1u << 15) | (1u << 31) : 0u));
        f.SetVringAddress(q, new VringConfigData(d.Size, d.Size, VringFlags.None, UserAddress(d.DescriptorAddress), UserAddress(d.DeviceAreaAddress), UserAddress(d.DriverAreaAddress)));
        f.SetVringKick(q, rq.Kick);
        f.SetVringCall(q, rq.Call);
        f.SetVringError(q, rq.Error);
    }

    /// <summary>Adds one request (payload → readable buffer, an equal writable buffer), publishes, kicks when asked.</summary>
    public ushort Submit(int q, byte[] payload, bool kick = true)
    {
        RigQueue rq = Queues[q];
        Assert.True(payload.Length <= RigQueue.SlotBytes);
        // The next slot no request in flight uses (completions may come back in any order).
        int slot;
        do
        {
            slot = rq.NextSlot++ % rq.Driver.Size;
        }
        while (rq.InFlight.Values.Any(r => r.Slot == slot));
        ulong input = rq.BufferBase + ((ulong)slot * 2 * RigQueue.SlotBytes);
        ulong output = input + RigQueue.SlotBytes;
        Ram.Write(input, payload);
        Ram.GetSpan(output, RigQueue.SlotBytes).Clear();
        ushort id = rq.Driver.Add([new VirtqBuffer(input, (uint)payload.Length, false), new VirtqBuffer(output, RigQueue.SlotBytes, true)]);
        rq.InFlight.Add(id, (slot, payload));
        rq.Driver.Publish();
        if (kick && rq.Driver.NeedsKick())
        {
            rq.Kick.Signal();
        }

        return id;
    }

    /// <summary>Waits for the next completion on <paramref name="q"/> and checks its length and bytes.</summary>
    public ushort Complete(int q, int timeoutMs = 5000)
    {
        RigQueue rq = Queues[q];
        long deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            if (rq.Driver.TryGetUsed(out ushort id, out uint length))
            {
                Assert.True(rq.InFlight.Remove(id, out (int Slot, byte[] Payload) request), $"queue {q}: used id {id} was not in flight");
                Assert.Equal((uint)request.Payload.Length, length);
                ulong output = rq.BufferBase + ((ulong)request.Slot * 2 * RigQueue.SlotBytes) + RigQueue.SlotBytes;
                Assert.Equal(request.Payload, Ram.GetSpan(output, request.Payload.Length).ToArray());
                return id;
            }

            if (rq.Driver.EnableInterrupts())
            {
                continue;
            }

            long left = deadline - Environment.TickCount64;
            Assert.True(left > 0, $"queue {q}: no completion within {timeoutMs} ms");
            if (UnixSocket.WaitReady(rq.Call, Interop.POLLIN, (int)Math.Min(left, 100)))
            {
                rq.Call.TryRead(out _);
            }
        }
    }

    public static byte[] Payload(int seed, int length = 64)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public void DisconnectFrontend()
    {
        Frontend?.Dispose();
        Frontend = null;
    }

    public void Dispose()
    {
        DisconnectFrontend();
        if (_ownsDaemon)
        {
            Daemon.Dispose();
        }

        foreach (RigQueue q in Queues)
        {
            q.Dispose();
        }

        Ram.Dispose();
    }

    /// <summary>Waits until the daemon has released the last front-end.</summary>
    public static void WaitDisconnected(VhostUserDaemon daemon, long connections)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (daemon.IsConnected || daemon.ConnectionCount < connections)
        {
            Assert.True(Environment.TickCount64 < deadline, "the daemon did not release the front-end");
            Thread.Sleep(1);
        }
    }
}
