using System.Runtime.InteropServices;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;
using VhostUserBackend.Testing;

namespace Vhost.HostileTests.Frontend;

/// <summary>Memory-table abuse and vring index, size and address abuse.</summary>
public static class MemoryAndVringScenarios
{
    private const ulong Ua = 0x7f00_0000_0000;

    /// <summary>Every scenario of these classes.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string M = "memory tables";
        (string, uint, VhostUserMemoryRegion[], int)[] tables =
        [
            ("0 regions", 0, [], 0),
            ("9 regions (over the limit)", 9, [.. Enumerable.Range(0, 9).Select(i => Kit.R((ulong)i << 16, 0x10000, Ua + ((ulong)i << 16), 0))], 8),
            ("count 3, 1 region sent", 3, [Kit.R(0, 0x10000, Ua, 0)], 1),
            ("region larger than its file", 1, [Kit.R(0, 0x200000, Ua, 0)], 1),
            ("offset beyond the file", 1, [Kit.R(0, 0x1000, Ua, 0x100000)], 1),
            ("offset + size wraps", 1, [Kit.R(0, 0x1000, Ua, ulong.MaxValue - 0xfff)], 1),
            ("offset not page aligned", 1, [Kit.R(0, 0x1000, Ua, 0x10)], 1),
            ("overlapping guest ranges", 2, [Kit.R(0, 0x8000, Ua, 0), Kit.R(0x4000, 0x8000, Ua + 0x100000, 0x8000)], 2),
            ("overlapping user ranges", 2, [Kit.R(0, 0x8000, Ua, 0), Kit.R(0x100000, 0x8000, Ua + 0x4000, 0x8000)], 2),
            ("guest address wraps 2^64", 1, [Kit.R(ulong.MaxValue - 0xfff, 0x2000, Ua, 0)], 1),
            ("user address wraps 2^64", 1, [Kit.R(0, 0x2000, ulong.MaxValue - 0xfff, 0)], 1),
            ("size 0", 1, [Kit.R(0, 0, Ua, 0)], 1),
            ("size 2^64-1", 1, [Kit.R(0, ulong.MaxValue, Ua, 0)], 1),
            ("duplicate regions", 2, [Kit.R(0, 0x8000, Ua, 0), Kit.R(0, 0x8000, Ua, 0)], 2),
        ];
        foreach ((string name, uint claimed, VhostUserMemoryRegion[] regions, int fdCount) in tables)
        {
            yield return new(M, name, t => Kit.WithNegotiated(t, s =>
            {
                using var m = Kit.MemFd(1 << 20);
                SafeHandle[] fds = [.. Enumerable.Repeat<SafeHandle>(m, fdCount)];
                s.Send(FrontendRequest.SetMemTable, Kit.MemTable(claimed, regions), fds);
            }));
            if (regions.Length == 1)
            {
                VhostUserMemoryRegion r = regions[0];
                yield return new(M, $"ADD_MEM_REG {name}", t => Kit.WithNegotiated(t, s =>
                {
                    using var m = Kit.MemFd(1 << 20);
                    s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(r), m);
                }));
            }
        }

        yield return new(M, "400 ADD_MEM_REG then close", t => Kit.WithNegotiated(t, s =>
        {
            using var m = Kit.MemFd(400 * 0x1000);
            for (ulong i = 0; i < 400; i++)
            {
                s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(Kit.R(i << 20, 0x1000, Ua + (i << 20), i * 0x1000)), m);
            }
        }));
        yield return new(M, "510 ADD_MEM_REG (one past the slots)", t => Kit.WithNegotiated(t, s =>
        {
            using var m = Kit.MemFd(0x1000);
            for (ulong i = 0; i < 510; i++)
            {
                s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(Kit.R(i << 20, 0x1000, Ua + (i << 20), 0)), m);
            }
        }));
        yield return new(M, "ADD_MEM_REG overlapping the table", t => Kit.WithReady(t, (s, ram) =>
        {
            using var m = Kit.MemFd(0x10000);
            s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(Kit.R(0x1000, 0x10000, Ua, 0)), m);
        }));
        yield return new(M, "REM_MEM_REG of an unknown region", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.RemMemReg, new VhostUserSingleMemoryRegion(Kit.R(0x5000_0000, 0x1000, Ua, 0)))));
        yield return new(M, "REM_MEM_REG of the region under live rings, then kick", t => RingsThen(t, (s, ram, kick) =>
        {
            GuestRamRegion r = ram.Regions[0];
            s.Send(FrontendRequest.RemMemReg, new VhostUserSingleMemoryRegion(Kit.R(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset)));
            kick.Signal();
            Thread.Sleep(20);
        }));
        yield return new(M, "table replaced so it no longer covers live rings, then kick", t => RingsThen(t, (s, ram, kick) =>
        {
            using GuestRam other = GuestRam.Create(0x10000, 0x4000_0000);
            s.MemoryTable(other);
            kick.Signal();
            Thread.Sleep(20);
        }));
        yield return new(M, "table replaced by a smaller one cutting the used ring, then kick", t => RingsThen(t, (s, ram, kick) =>
        {
            GuestRamRegion r = ram.Regions[0];
            using var m = Kit.MemFd((long)r.Size);
            s.Send(FrontendRequest.SetMemTable, Kit.MemTable(1, Kit.R(0, 0x1000, r.UserAddress, 0)), [m]);
            kick.Signal();
            Thread.Sleep(20);
        }));
        yield return new(M, "SET_LOG_BASE absurd size", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetLogBase, HostileSession.Bytes(new VhostUserLog(ulong.MaxValue - 0x1000, 0)), [m]);
        }));
        yield return new(M, "SET_LOG_BASE past its file", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetLogBase, HostileSession.Bytes(new VhostUserLog(0x100000, 0x1000)), [m]);
        }));

        const string V = "vring abuse";
        foreach (uint index in new uint[] { 2, 255, 256, 0x8000, 0xffffffff })
        {
            uint i = index;
            yield return new(V, $"SET_VRING_NUM index {i:x}", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.SetVringNum, Kit.State(i, 64))));
            yield return new(V, $"SET_VRING_BASE index {i:x}", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.SetVringBase, Kit.State(i, 0))));
            yield return new(V, $"GET_VRING_BASE index {i:x}", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.GetVringBase, Kit.State(i, 0))));
            yield return new(V, $"SET_VRING_ENABLE index {i:x}", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.SetVringEnable, Kit.State(i, 1))));
            yield return new(V, $"SET_VRING_ADDR index {i:x}", t => Kit.WithReady(t, (s, ram) => s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = i, DescriptorTableAddress = Kit.UserAddress(ram, 0), UsedRingAddress = Kit.UserAddress(ram, 0x2000), AvailableRingAddress = Kit.UserAddress(ram, 0x1000) })));
            yield return new(V, $"VRING_KICK index {i:x}", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.VringKick, Kit.State(i, 0))));
            foreach (FrontendRequest r in new[] { FrontendRequest.SetVringKick, FrontendRequest.SetVringCall, FrontendRequest.SetVringErr })
            {
                FrontendRequest req = r;
                yield return new(V, $"{r} index {i:x}", t => Kit.WithReady(t, (s, _) =>
                {
                    using EventFd e = Kit.EventFd();
                    s.Send(req, Kit.U64(i), [e]);
                }));
            }
        }

        foreach (uint size in new uint[] { 0, 3, 100, 2048, 0x8000, 0x10000, 0xffffffff })
        {
            uint n = size;
            yield return new(V, $"queue size {n:x}, then start the ring", t => Kit.WithReady(t, (s, ram) =>
            {
                s.Send(FrontendRequest.SetVringNum, Kit.State(0, n));
                StartRing(s, ram, 0, 0x1000, 0x2000, kickNow: true);
            }));
        }

        (string, ulong, ulong, ulong)[] addresses =
        [
            ("descriptor table outside memory", 0x4000_0000, 0x1000, 0x2000),
            ("avail ring outside memory", 0, 0x4000_0000, 0x2000),
            ("used ring outside memory", 0, 0x1000, 0x4000_0000),
            ("misaligned descriptor table", 1, 0x1000, 0x2000),
            ("misaligned avail ring", 0, 0x1001, 0x2000),
            ("misaligned used ring", 0, 0x1000, 0x2002),
            ("descriptor table straddling the region end", Kit.RamSize - 0x200, 0x1000, 0x2000),
            ("used ring straddling the region end", 0, 0x1000, Kit.RamSize - 0x10),
            ("rings overlapping each other", 0, 0x10, 0x20),
        ];
        foreach ((string name, ulong d, ulong a, ulong u) in addresses)
        {
            yield return new(V, $"{name}, then kick", t => Kit.WithReady(t, (s, ram) =>
            {
                s.Send(FrontendRequest.SetVringNum, Kit.State(0, 64));
                StartRing(s, ram, d, a, u, kickNow: true);
            }));
        }

        yield return new(V, "user addresses not in any region", t => Kit.WithReady(t, (s, _) =>
            s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, DescriptorTableAddress = 0x1000, UsedRingAddress = 0x3000, AvailableRingAddress = 0x2000 })));
        yield return new(V, "GET_VRING_BASE on a ring never started", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.GetVringBase, Kit.State(0, 0))));
        yield return new(V, "GET_VRING_BASE twice", t => RingsThen(t, (s, _, _) =>
        {
            s.Send(FrontendRequest.GetVringBase, Kit.State(0, 0));
            s.Send(FrontendRequest.GetVringBase, Kit.State(0, 0));
        }));
        yield return new(V, "SET_VRING_BASE 0xffffffff on a split ring", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.SetVringBase, Kit.State(0, 0xffffffff))));
        yield return new(V, "SET_VRING_NUM while the ring runs", t => RingsThen(t, (s, _, kick) =>
        {
            s.Send(FrontendRequest.SetVringNum, Kit.State(0, 1024));
            kick.Signal();
        }));
        yield return new(V, "SET_VRING_ADDR while the ring runs", t => RingsThen(t, (s, ram, kick) =>
        {
            s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, DescriptorTableAddress = Kit.UserAddress(ram, Kit.RamSize - 16), UsedRingAddress = Kit.UserAddress(ram, 0x2000), AvailableRingAddress = Kit.UserAddress(ram, 0x1000) });
            kick.Signal();
        }));
        yield return new(V, "RESET_DEVICE and RESET_OWNER while the ring runs", t => RingsThen(t, (s, _, kick) =>
        {
            s.Send(FrontendRequest.ResetDevice, ReadOnlySpan<byte>.Empty);
            kick.Signal();
            s.Send(FrontendRequest.ResetOwner, ReadOnlySpan<byte>.Empty);
            kick.Signal();
        }));
        yield return new(V, "ring started twice with different kick fds", t => RingsThen(t, (s, ram, kick) =>
        {
            using EventFd k2 = Kit.EventFd();
            s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [k2]);
            k2.Signal();
            kick.Signal();
        }));
    }

    /// <summary>Sets queue 0's base, addresses (guest offsets), call and kick; kicks when asked.</summary>
    internal static void StartRing(HostileSession s, GuestRam ram, ulong desc, ulong avail, ulong used, bool kickNow)
    {
        s.Send(FrontendRequest.SetVringBase, Kit.State(0, 0));
        s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, DescriptorTableAddress = Kit.UserAddress(ram, desc), UsedRingAddress = Kit.UserAddress(ram, used), AvailableRingAddress = Kit.UserAddress(ram, avail) });
        using EventFd call = Kit.EventFd();
        using EventFd kick = Kit.EventFd();
        s.Send(FrontendRequest.SetVringCall, Kit.U64(0), [call]);
        s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [kick]);
        s.Send(FrontendRequest.SetVringEnable, Kit.State(0, 1));
        if (kickNow)
        {
            // A garbage avail index, so the device walks whatever is there.
            ram.GetSpan(avail + 2 < Kit.RamSize ? avail + 2 : 0, 2).Fill(0x7f);
            kick.Signal();
            Thread.Sleep(10);
        }
    }

    /// <summary>A session with queue 0 running (size 64 at 0/0x1000/0x2000), then <paramref name="attack"/>.</summary>
    internal static void RingsThen(IDaemonTarget t, Action<HostileSession, GuestRam, EventFd> attack) => Kit.WithReady(t, (s, ram) =>
    {
        s.Send(FrontendRequest.SetVringNum, Kit.State(0, 64));
        s.Send(FrontendRequest.SetVringBase, Kit.State(0, 0));
        s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, DescriptorTableAddress = Kit.UserAddress(ram, 0), UsedRingAddress = Kit.UserAddress(ram, 0x2000), AvailableRingAddress = Kit.UserAddress(ram, 0x1000) });
        using EventFd call = Kit.EventFd();
        using EventFd kick = Kit.EventFd();
        s.Send(FrontendRequest.SetVringCall, Kit.U64(0), [call]);
        s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [kick]);
        s.Send(FrontendRequest.SetVringEnable, Kit.State(0, 1));
        attack(s, ram, kick);
    });
}
