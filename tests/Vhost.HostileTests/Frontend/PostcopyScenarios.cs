using Vhost.HostileTests.Targets;
using Vhost.User.Messages;
using VhostUserBackend.Testing;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// Postcopy (PAGEFAULT) abused: the messages out of order (END or LISTEN before ADVISE, ADVISE or
/// LISTEN twice, the memory table before LISTEN), the region list never acknowledged or rejected,
/// and a front-end that takes the userfaultfd, lets a ring run on memory that has not "arrived"
/// and never resolves a fault before it leaves. Every refusal is a clean error, no userfaultfd
/// leaks, and a worker asleep in a fault is woken when the connection ends.
/// </summary>
public static class PostcopyScenarios
{
    /// <summary>The category name.</summary>
    public const string Category = "postcopy";

    /// <summary>Every scenario of this class.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string C = Category;
        yield return new(C, "POSTCOPY_END before POSTCOPY_ADVISE", t => With(t, s => End(s)));
        yield return new(C, "POSTCOPY_LISTEN before POSTCOPY_ADVISE, then a memory table", t => With(t, s =>
        {
            Listen(s);
            using GuestRam ram = GuestRam.Create(Kit.RamSize);
            s.MemoryTable(ram);
        }));
        yield return new(C, "POSTCOPY_ADVISE twice, then leave without END", t => With(t, s =>
        {
            Advise(s);
            Advise(s);
        }));
        yield return new(C, "POSTCOPY_END twice after ADVISE", t => With(t, s =>
        {
            Advise(s);
            End(s);
            End(s);
        }));
        yield return new(C, "POSTCOPY_LISTEN twice", t => With(t, s =>
        {
            Advise(s);
            Listen(s);
            Listen(s);
            End(s);
        }));
        yield return new(C, "the memory table before POSTCOPY_LISTEN", t => With(t, s =>
        {
            using GuestRam ram = GuestRam.Create(Kit.RamSize);
            Advise(s);
            s.MemoryTable(ram);
            Listen(s);
            End(s);
        }));
        yield return new(C, "region list never acknowledged, then leave", t => With(t, s =>
        {
            using GuestRam ram = GuestRam.Create(Kit.RamSize);
            Advise(s);
            Listen(s);
            s.MemoryTable(ram);
        }));
        yield return new(C, "region list rejected (u64 1)", t => With(t, s =>
        {
            using GuestRam ram = GuestRam.Create(Kit.RamSize);
            Advise(s);
            Listen(s);
            s.MemoryTable(ram);
            s.Send(FrontendRequest.SetMemTable, Kit.U64(1), needReply: false);
        }));
        yield return new(C, "acknowledgement without a region list (an 8-byte SET_MEM_TABLE)", t => With(t, s =>
        {
            Advise(s);
            s.Send(FrontendRequest.SetMemTable, Kit.U64(0));
            Listen(s);
            s.Send(FrontendRequest.SetMemTable, Kit.U64(0));
            End(s);
        }));
        yield return new(C, "ADD_MEM_REG while listening (CONFIGURE_MEM_SLOTS is not offered with PAGEFAULT)", t => With(t, s =>
        {
            using GuestRam ram = GuestRam.Create(Kit.RamSize);
            Advise(s);
            Listen(s);
            GuestRamRegion r = ram.Regions[0];
            s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(Kit.R(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset)), ram.FileHandle);
            End(s);
        }));
        yield return new(C, "a ring runs on registered memory whose pages never arrive, kicked, then the front-end leaves", t => With(t, s => KickedOnRegisteredMemory(s, kick => Thread.Sleep(100))));
        yield return new(C, "a ring runs on registered memory whose pages never arrive, kicked, then a new memory table (the workers must pause) and the front-end leaves", t => With(t, s => KickedOnRegisteredMemory(s, kick =>
        {
            // The worker sleeps in a fault nobody serves; the table needs it paused, and only the
            // front-end leaving can end that wait (the daemon must notice it while it waits).
            Thread.Sleep(100);
            using GuestRam other = GuestRam.Create(Kit.RamSize);
            s.MemoryTable(other);
            Thread.Sleep(300);
        })));
        yield return new(C, "a ring runs on registered memory, kicked, then POSTCOPY_END and more kicks", t => With(t, s => KickedOnRegisteredMemory(s, kick =>
        {
            Thread.Sleep(50);
            End(s);
            kick.Signal();
        })));
    }

    private static void With(IDaemonTarget t, Action<HostileSession> attack)
    {
        using HostileSession s = HostileSession.Open(t.SocketPath);
        s.Negotiate(extraProtocol: VhostUserProtocolFeatures.PageFault);
        attack(s);
        s.Drain(20);
    }

    private static void Advise(HostileSession s) => s.Send(FrontendRequest.PostcopyAdvise, ReadOnlySpan<byte>.Empty);

    private static void Listen(HostileSession s) => s.Send(FrontendRequest.PostcopyListen, ReadOnlySpan<byte>.Empty);

    private static void End(HostileSession s) => s.Send(FrontendRequest.PostcopyEnd, ReadOnlySpan<byte>.Empty);

    /// <summary>ADVISE, LISTEN, the memory table and its acknowledgement, a started ring kicked on pages that never arrive, then <paramref name="then"/>.</summary>
    private static void KickedOnRegisteredMemory(HostileSession s, Action<Vhost.EventFd> then)
    {
        using GuestRam ram = GuestRam.Create(Kit.RamSize);
        Advise(s);
        Listen(s);
        s.MemoryTable(ram);
        s.Send(FrontendRequest.SetMemTable, Kit.U64(0), needReply: false);
        using Vhost.EventFd kick = StartRing(s, ram);
        kick.Signal();
        then(kick);
    }

    private static Vhost.EventFd StartRing(HostileSession s, GuestRam ram)
    {
        s.Send(FrontendRequest.SetVringNum, Kit.State(0, 64));
        s.Send(FrontendRequest.SetVringBase, Kit.State(0, 0));
        s.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress { Index = 0, DescriptorTableAddress = Kit.UserAddress(ram, 0), UsedRingAddress = Kit.UserAddress(ram, 0x2000), AvailableRingAddress = Kit.UserAddress(ram, 0x1000) });
        using Vhost.EventFd call = Kit.EventFd();
        Vhost.EventFd kick = Kit.EventFd();
        s.Send(FrontendRequest.SetVringCall, Kit.U64(0), [call]);
        s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [kick]);
        s.Send(FrontendRequest.SetVringEnable, Kit.State(0, 1));
        return kick;
    }
}
