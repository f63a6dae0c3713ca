using System.Runtime.InteropServices;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// The messages of a live migration, abused: dirty logs that are too small, not a memfd, past
/// their file, or replaced in a storm under a running ring; log flags with bad log addresses;
/// a running ring moved; the messages out of order; a newer front-end's unknown request.
/// </summary>
public static class MigrationScenarios
{
    private const ulong LogAll = 1UL << 26;

    /// <summary>Every scenario of this class.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string C = "migration messages";
        yield return new(C, "SET_LOG_BASE: a regular file, not a memfd", t => Kit.WithReady(t, (s, _) =>
        {
            using var f = Kit.RegularFile(0x1000);
            s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0 }, f);
        }));
        yield return new(C, "SET_LOG_BASE: a pipe", t => Kit.WithReady(t, (s, _) =>
        {
            (var r, var w) = Kit.Pipe();
            using (r)
            using (w)
            {
                s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0 }, r);
            }
        }));
        yield return new(C, "SET_LOG_BASE: 8 bytes for 1 MiB of guest memory", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 8, MmapOffset = 0 }, m);
        }));
        yield return new(C, "SET_LOG_BASE: past the end of its file", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0x10000 }, m);
        }));
        yield return new(C, "SET_LOG_BASE: no fd", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0 })));
        yield return new(C, "SET_LOG_BASE: a memfd that cannot be sealed (accepted with a warning)", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.UnsealableMemFd(0x1000);
            s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0 }, m);
        }));
        yield return new(C, "LOG_ALL on, 100 logs replaced while a ring runs and is kicked", t => MemoryAndVringScenarios.RingsThen(t, (s, ram, kick) =>
        {
            s.Send(FrontendRequest.SetFeatures, new VhostUserU64 { Value = s.Negotiated | LogAll });
            for (int i = 0; i < 100; i++)
            {
                using var m = Kit.MemFd(0x1000);
                s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0 }, m);
                kick.Signal();
            }
        }));
        yield return new(C, "VHOST_VRING_F_LOG on a running ring, log address outside guest memory", t => MemoryAndVringScenarios.RingsThen(t, (s, ram, kick) =>
        {
            s.Send(FrontendRequest.SetVringAddr, Address(ram, VhostUserVringAddressFlags.Log, 0x7000_0000_0000));
            kick.Signal();
        }));
        yield return new(C, "VHOST_VRING_F_LOG on and off 200 times on a running ring", t => MemoryAndVringScenarios.RingsThen(t, (s, ram, kick) =>
        {
            s.Send(FrontendRequest.SetFeatures, new VhostUserU64 { Value = s.Negotiated | LogAll });
            for (int i = 0; i < 200; i++)
            {
                s.Send(FrontendRequest.SetVringAddr, Address(ram, i % 2 == 0 ? VhostUserVringAddressFlags.Log : VhostUserVringAddressFlags.None, 0x2000));
                kick.Signal();
            }
        }));
        yield return new(C, "SET_VRING_ADDR moving a running ring", t => MemoryAndVringScenarios.RingsThen(t, (s, ram, kick) =>
        {
            VhostUserVringAddress a = Address(ram, VhostUserVringAddressFlags.None, 0);
            a.UsedRingAddress += 0x1000;
            s.Send(FrontendRequest.SetVringAddr, a);
            kick.Signal();
        }));
        yield return new(C, "out of order: ring logging and LOG_ALL before any memory or log", t => Kit.WithNegotiated(t, s =>
        {
            s.Send(FrontendRequest.SetFeatures, new VhostUserU64 { Value = s.Negotiated | LogAll });
            s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, Flags = VhostUserVringAddressFlags.Log, LogAddress = 0x2000 });
            using var kick = Kit.EventFd();
            s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [kick]);
            kick.Signal();
        }));
        yield return new(C, "out of order: GET_VRING_BASE twice on a never-started ring, then SET_LOG_BASE before the memory table", t => Kit.WithNegotiated(t, s =>
        {
            s.Send(FrontendRequest.GetVringBase, Kit.State(0, 0), needReply: false);
            s.Send(FrontendRequest.GetVringBase, Kit.State(0, 44000), needReply: false);
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetLogBase, new VhostUserLog { MmapSize = 0x1000, MmapOffset = 0 }, m);
        }));
        yield return new(C, "out of order: REM_MEM_REG under a running ring, then ADD_MEM_REG of another file at the same addresses, then kick", t => MemoryAndVringScenarios.RingsThen(t, (s, ram, kick) =>
        {
            var r = ram.Regions[0];
            s.Send(FrontendRequest.RemMemReg, new VhostUserSingleMemoryRegion(Kit.R(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset)));
            kick.Signal();
            using var other = Kit.MemFd((long)r.Size);
            s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(Kit.R(r.GuestPhysicalAddress, r.Size, r.UserAddress, 0)), other);
            kick.Signal();
        }));
        yield return new(C, "a newer front-end's request 46 (with NEED_REPLY and an fd) and 47 (without)", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send((FrontendRequest)46, Kit.State(0, 0), [m]);
            s.Send((FrontendRequest)47, Kit.U64(7), needReply: false);
        }));
        yield return new(C, "GET_VRING_BASE_SKIP_DRAIN (45) on a running ring, bit 23 not negotiated", t => MemoryAndVringScenarios.RingsThen(t, (s, ram, kick) =>
        {
            kick.Signal();
            s.Send(FrontendRequest.GetVringBaseSkipDrain, Kit.State(0, 0));
        }));
        yield return new(C, "GET_VRING_BASE_SKIP_DRAIN: an fd attached, ring 300, a 4-byte payload", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.GetVringBaseSkipDrain, Kit.State(0, 0), [m]);
            s.Send(FrontendRequest.GetVringBaseSkipDrain, Kit.State(300, 0));
            s.Send(FrontendRequest.GetVringBaseSkipDrain, new byte[4]);
        }));
        yield return new(C, "SET_LOG_FD with a memfd instead of an eventfd", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetLogFd, ReadOnlySpan<byte>.Empty, [m]);
        }));
    }

    private static VhostUserVringAddress Address(VhostUserBackend.Testing.GuestRam ram, VhostUserVringAddressFlags flags, ulong logAddress) => new()
    {
        Index = 0,
        Flags = flags,
        DescriptorTableAddress = Kit.UserAddress(ram, 0),
        UsedRingAddress = Kit.UserAddress(ram, 0x2000),
        AvailableRingAddress = Kit.UserAddress(ram, 0x1000),
        LogAddress = logAddress,
    };
}
