using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostUserBackend.Memory;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>
/// A <see cref="Vring"/> started through its own lifecycle (features, size, addresses, start) over
/// a guest RAM and a split or packed driver, enabled, optionally with an inflight region: the
/// ring's data path without a daemon, a socket or a worker thread.
/// </summary>
internal sealed class VringRig : IDisposable
{
    public const ulong RamBase = 0x100000;
    public const ulong Data = RamBase + 0x200000;

    private readonly VhostUserBackendMetrics _metrics = new();

    private VringRig(bool packed, ushort size, bool eventIdx, bool inflight)
    {
        Ram = GuestRam.Create(4 << 20, RamBase);
        Memory = Ram.CreateGuestMemory();
        ulong desc, driverArea, deviceArea;
        if (packed)
        {
            Packed = new PackedQueueDriver(Ram, size, eventIdx, maxIndirectEntries: 8);
            (desc, driverArea, deviceArea) = (Packed.DescriptorRingAddress, Packed.DriverEventAddress, Packed.DeviceEventAddress);
        }
        else
        {
            Split = new SplitQueueDriver(Ram, size, eventIdx, maxIndirectEntries: 8);
            (desc, driverArea, deviceArea) = (Split.DescriptorTableAddress, Split.AvailRingAddress, Split.UsedRingAddress);
        }

        Vring = new Vring(0, 256, _metrics) { IsEnabled = true };
        Vring.ApplyFeatures(packed, eventIdx, indirect: true);
        Vring.SetSize(size);
        Vring.SetAddresses(User(desc), User(driverArea), User(deviceArea), null);
        if (inflight)
        {
            Region = InflightRegion.Create(1, size, 0, out SafeFileHandle fd, packed);
            RegionFd = fd;
        }

        Vring.Start(Memory, Region);
    }

    public GuestRam Ram { get; }

    public GuestMemory Memory { get; }

    public SplitQueueDriver? Split { get; }

    public PackedQueueDriver? Packed { get; }

    public Vring Vring { get; }

    /// <summary>The ring's queue (its layout's state: next indices, wrap counters).</summary>
    public Virtqueue Device => Vring.Queue;

    public InflightRegion? Region { get; }

    public SafeFileHandle? RegionFd { get; }

    public static VringRig CreateSplit(ushort size = 8, bool eventIdx = false, bool inflight = false) => new(packed: false, size, eventIdx, inflight);

    public static VringRig CreatePacked(ushort size = 8, bool eventIdx = false, bool inflight = false) => new(packed: true, size, eventIdx, inflight);

    /// <summary>
    /// A new back-end's ring (the old one is left as a crashed process leaves it: nothing stopped,
    /// nothing completed) over the same guest memory and the same inflight region, mapped anew,
    /// started from <paramref name="baseValue"/> (for a packed ring QEMU sends the base of its last
    /// start after a crash: by default the initial one).
    /// </summary>
    public (Vring Ring, InflightRegion Region, int Resubmitted) NewBackend(uint? baseValue = null)
    {
        bool packed = Packed is not null;
        ushort size = packed ? Packed!.Size : Split!.Size;
        var region = InflightRegion.Map(RegionFd!, new Vhost.User.Messages.VhostUserInflight { MmapSize = InflightRegion.RegionSize(1, size, packed), QueueCount = 1, QueueSize = size }, packed);
        var ring = new Vring(0, 256, _metrics) { IsEnabled = true };
        ring.ApplyFeatures(packed, Vring.Queue.EventIdx, indirect: true);
        ring.SetSize(size);
        ulong desc = packed ? Packed!.DescriptorRingAddress : Split!.DescriptorTableAddress;
        ulong driverArea = packed ? Packed!.DriverEventAddress : Split!.AvailRingAddress;
        ulong deviceArea = packed ? Packed!.DeviceEventAddress : Split!.UsedRingAddress;
        ring.SetAddresses(User(desc), User(driverArea), User(deviceArea), null);
        ring.SetBase(baseValue ?? (packed ? (1u << 15) | (1u << 31) : 0u));
        int resubmitted = ring.Start(Memory, region);
        return (ring, region, resubmitted);
    }

    /// <summary>The back-end stops the ring and starts it again from its base, recovering from the inflight region as a restarted back-end does.</summary>
    /// <returns>The base the stop reported.</returns>
    public uint Restart()
    {
        uint stoppedAt = Vring.Stop();
        Vring.SetBase(stoppedAt);
        Vring.Start(Memory, Region);
        return stoppedAt;
    }

    /// <summary>The inflight byte and fetch counter of <paramref name="head"/> in the region.</summary>
    public (byte Inflight, ulong Counter) Mark(ushort head)
    {
        var d = new byte[16];
        Fd.PRead(RegionFd!, d, 16 + (16L * head));
        return (d[0], BitConverter.ToUInt64(d, 8));
    }

    /// <summary>Writes a region mark directly (a previous back-end's inflight request).</summary>
    public void SetMark(ushort head, ulong counter)
    {
        var d = new byte[16];
        d[0] = 1;
        BitConverter.GetBytes(counter).CopyTo(d, 8);
        Fd.PWrite(RegionFd!, d, 16 + (16L * head));
    }

    /// <summary>Adds and publishes a chain of <paramref name="buffers"/> buffers, the last one writable (distinct per <paramref name="n"/>).</summary>
    public ushort Add(int n, bool indirect = false, int buffers = 2)
    {
        var list = new VirtqBuffer[buffers];
        for (int i = 0; i < buffers; i++)
        {
            list[i] = new VirtqBuffer(Data + ((ulong)n * 0x1000) + ((ulong)i * 0x100), (uint)(16 + n + i), i == buffers - 1);
        }

        if (Split is not null)
        {
            ushort head = Split.AddBuffers(list, indirect);
            Split.Publish();
            return head;
        }

        return Packed!.AddBuffers(list, indirect);
    }

    public bool TryGetUsed(out ushort id, out uint length)
        => Split is not null ? Split.TryGetUsed(out id, out length) : Packed!.TryGetUsed(out id, out length);

    public DescriptorChain Pop()
    {
        Assert.True(Vring.TryPopDescriptorChain(out DescriptorChain chain), "nothing to pop");
        return chain;
    }

    public static List<VirtqBuffer> Buffers(DescriptorChain chain)
    {
        var list = new List<VirtqBuffer>();
        foreach (VirtqBuffer b in chain)
        {
            list.Add(b);
        }

        return list;
    }

    public void Dispose()
    {
        Vring.Stop();
        Vring.Queue.Dispose();
        Memory.Dispose();
        Ram.Dispose();
        Region?.Dispose();
        RegionFd?.Dispose();
        _metrics.Dispose();
    }

    private ulong User(ulong gpa)
    {
        GuestRamRegion r = Ram.Regions[0];
        return r.UserAddress + (gpa - r.GuestPhysicalAddress);
    }
}
