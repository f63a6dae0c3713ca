using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;
using VhostUserBackend.Testing;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// A front-end that acked VIRTIO_F_RING_PACKED hands the daemon a packed-layout inflight region
/// (SET_INFLIGHT_FD) that is too small or full of garbage, then starts ring 0 (size 16) on it: the
/// daemon must refuse the region or the ring start with the reason, and survive. Also a valid
/// region whose recorded chains point outside guest memory (resubmitted, then refused by the
/// ring), and a region scribbled over while the ring runs.
/// </summary>
public static class PackedInflightScenarios
{
    /// <summary>The class name.</summary>
    public const string Category = "packed inflight regions";

    private const ushort Entries = 64;
    private const ushort RingSize = 16;
    private const int HeaderBytes = 32;
    private const int EntryBytes = 32;
    private const ulong Descriptors = 0x1000;
    private const ulong DriverArea = 0x2000;
    private const ulong DeviceArea = 0x3000;

    /// <summary>The region's size for one queue of 64 (the packed layout, as the daemon computes it).</summary>
    private static readonly int RegionBytes = (((HeaderBytes + (EntryBytes * Entries) - 3) + 63) & ~63);

    /// <summary>Every scenario of this class.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        yield return new(Category, "split-sized region for a packed ring", t => Kit.WithReady(t, (s, _) =>
        {
            using SafeFileHandle m = Kit.MemFd(RegionBytes);
            s.Send(FrontendRequest.SetInflightFd, new VhostUserInflight { MmapSize = 16 + (16 * Entries), QueueCount = 1, QueueSize = Entries }, m);
        }, packed: true));
        yield return new(Category, "mmap_size past the end of the fd", t => Kit.WithReady(t, (s, _) =>
        {
            using SafeFileHandle m = Kit.MemFd(4096);
            s.Send(FrontendRequest.SetInflightFd, new VhostUserInflight { MmapSize = (ulong)RegionBytes, QueueCount = 1, QueueSize = Entries }, m);
        }, packed: true));
        yield return new(Category, "queue size 0x8000, 2 queues, 4 KiB fd", t => Kit.WithReady(t, (s, _) =>
        {
            using SafeFileHandle m = Kit.MemFd(4096);
            s.Send(FrontendRequest.SetInflightFd, new VhostUserInflight { MmapSize = 4096, QueueCount = 2, QueueSize = 0x8000 }, m);
        }, packed: true));

        foreach ((ushort queues, ushort size) in new (ushort, ushort)[] { (0xffff, 0xffff), (1, 0x8000), (1, 1024) })
        {
            yield return new(Category, $"GET_INFLIGHT_FD {queues} x {size} (packed layout)", t => Kit.WithReady(t, (s, _) =>
                s.Send(FrontendRequest.GetInflightFd, new VhostUserInflight { QueueCount = queues, QueueSize = size }), packed: true));
        }

        (string Name, Action<byte[]> Corrupt)[] garbage =
        [
            ("version 7", r => W16(r, 8, 7)),
            ("desc_num differs from the queue size", r => W16(r, 10, 63)),
            ("used_idx past the ring", r => W16(r, 16, RingSize)),
            ("old_used_idx past the ring", r => W16(r, 18, 0xffff)),
            ("wrap counter 5", r => r[20] = 5),
            ("free_head past the entries", r => W16(r, 12, 200)),
            ("free list loops", r => W16(r, Entry(Entries - 1) + 2, 10)),
            ("free list leaves the entries", r => W16(r, Entry(20) + 2, 0x4000)),
            ("free list runs into a chain", r => W16(r, Entry(20) + 2, 0)),
            ("inflight byte 2", r => r[Entry(30)] = 2),
            ("chain of 0 descriptors", r => W16(r, Entry(0) + 6, 0)),
            ("chain longer than the ring", r => W16(r, Entry(0) + 6, 40)),
            ("chain loops onto itself", r => W16(r, Entry(0) + 2, 0)),
            ("chain's last disagrees", r => W16(r, Entry(0) + 4, 5)),
            ("buffer id past the ring", r => W16(r, Entry(2) + 16, 900)),
            ("two chains with one buffer id", r => W16(r, Entry(3) + 16, 0)),
            ("NEXT missing inside a chain", r => W16(r, Entry(0) + 18, 0)),
            ("an entry neither free nor in a chain", r => W16(r, Entry(9) + 2, 11)),
            ("every entry marked inflight", r => { for (int e = 0; e < Entries; e++) { r[Entry(e)] = 1; } }),
            ("chains hold more descriptors than the ring", r => { for (int e = 4; e < 17; e++) { Chain(r, e, 1, (ushort)(e - 1), 0x40000); } W16(r, 12, 17); W16(r, 14, 17); }),
            ("all bytes 0xff", r => r.AsSpan().Fill(0xff)),
            ("random bytes (version 1)", r => { new Random(20).NextBytes(r); W16(r, 8, 1); W16(r, 10, Entries); }),
        ];
        foreach ((string name, Action<byte[]> corrupt) in garbage)
        {
            yield return new(Category, name, t => StartOn(t, corrupt));
        }

        yield return new(Category, "valid region, recorded chains outside guest memory", t => StartOn(t, r =>
        {
            Chain(r, 0, 2, 0, 0xdead_0000_0000);
            Chain(r, 2, 1, 1, ulong.MaxValue - 8);
        }, kick: true));
        yield return new(Category, "region scribbled over while the ring runs", t => StartOn(t, _ => { }, kick: true, after: (region, ram) =>
        {
            byte[] junk = new byte[RegionBytes];
            new Random(3).NextBytes(junk);
            Fd.PWrite(region, junk, 0);
            Publish(ram, 0, 0x40000, 64, 7);
        }));
    }

    /// <summary>A valid region for ring 0: two chains in flight (entries 0-1: ids 0, descriptors 2; entry 2: id 1; entry 3: id 2), the rest free; then <paramref name="corrupt"/>; then the ring starts on it.</summary>
    private static void StartOn(IDaemonTarget t, Action<byte[]> corrupt, bool kick = false, Action<SafeFileHandle, GuestRam>? after = null) => Kit.WithReady(t, (s, ram) =>
    {
        byte[] r = new byte[RegionBytes];
        W16(r, 8, 1);
        W16(r, 10, Entries);
        r[20] = 1;
        r[21] = 1;
        for (int e = 0; e < Entries; e++)
        {
            W16(r, Entry(e) + 2, (ushort)(e + 1));
        }

        Chain(r, 0, 2, 0, 0x40000, counter: 4);
        Chain(r, 2, 1, 1, 0x41000, counter: 2);
        Chain(r, 3, 1, 2, 0x42000, counter: 3);
        W16(r, 12, 4);
        W16(r, 14, 4);
        corrupt(r);

        using SafeFileHandle region = Kit.MemFd(RegionBytes);
        Fd.PWrite(region, r, 0);
        s.Send(FrontendRequest.SetInflightFd, new VhostUserInflight { MmapSize = (ulong)RegionBytes, QueueCount = 1, QueueSize = Entries }, region);
        s.Send(FrontendRequest.SetVringNum, Kit.State(0, RingSize));
        s.Send(FrontendRequest.SetVringBase, Kit.State(0, 0x8000_8000));
        s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, DescriptorTableAddress = Kit.UserAddress(ram, Descriptors), AvailableRingAddress = Kit.UserAddress(ram, DriverArea), UsedRingAddress = Kit.UserAddress(ram, DeviceArea) });
        using EventFd k = Kit.EventFd();
        using EventFd c = Kit.EventFd();
        s.Send(FrontendRequest.SetVringCall, Kit.U64(0), [c]);
        s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [k]);
        s.Send(FrontendRequest.SetVringEnable, Kit.State(0, 1));
        after?.Invoke(region, ram);
        if (kick)
        {
            k.Signal();
            Thread.Sleep(30);
        }
    }, packed: true);

    private static int Entry(int e) => HeaderBytes + (EntryBytes * e);

    private static void W16(byte[] r, int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(offset), value);

    /// <summary>Records a chain of <paramref name="count"/> consecutive entries from <paramref name="first"/> (buffer id <paramref name="id"/>, readable buffers of 64 bytes at <paramref name="address"/>).</summary>
    private static void Chain(byte[] r, int first, int count, ushort id, ulong address, ulong counter = 0)
    {
        r[Entry(first)] = 1;
        W16(r, Entry(first) + 4, (ushort)(first + count - 1));
        W16(r, Entry(first) + 6, (ushort)count);
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(Entry(first) + 8), counter);
        for (int k = 0; k < count; k++)
        {
            int e = Entry(first + k);
            W16(r, e + 16, id);
            W16(r, e + 18, (ushort)(k < count - 1 ? 1 : 0));
            BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(e + 20), 64);
            BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(e + 24), address + ((ulong)k * 64));
        }
    }

    /// <summary>Makes one descriptor available in ring slot <paramref name="slot"/> (wrap counter 1).</summary>
    private static void Publish(GuestRam ram, int slot, ulong address, uint length, ushort id)
    {
        Span<byte> d = ram.GetSpan(Descriptors + ((ulong)slot * 16), 16);
        BinaryPrimitives.WriteUInt64LittleEndian(d, address);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], id);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], 1 << 7);
    }
}
