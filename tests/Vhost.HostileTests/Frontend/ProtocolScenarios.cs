using System.Runtime.InteropServices;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;

namespace Vhost.HostileTests.Frontend;

/// <summary>Header abuse, payload sizes, and fds that are stray, missing or of the wrong kind.</summary>
public static class ProtocolScenarios
{
    /// <summary>The payload size each fixed-size request must have (-1: variable).</summary>
    /// <param name="r">The request.</param>
    /// <returns>The size.</returns>
    internal static int FixedSize(FrontendRequest r) => r switch
    {
        FrontendRequest.GetFeatures or FrontendRequest.SetOwner or FrontendRequest.ResetOwner or FrontendRequest.GetProtocolFeatures
            or FrontendRequest.GetQueueNum or FrontendRequest.PostcopyAdvise or FrontendRequest.PostcopyListen or FrontendRequest.PostcopyEnd
            or FrontendRequest.ResetDevice or FrontendRequest.GetMaxMemSlots or FrontendRequest.GetStatus or FrontendRequest.CheckDeviceState
            or FrontendRequest.GetShmemConfig or FrontendRequest.SetLogFd or FrontendRequest.SetBackendReqFd or FrontendRequest.GpuSetSocket => 0,
        FrontendRequest.SetLogBase => 16,
        FrontendRequest.SetVringAddr or FrontendRequest.AddMemReg or FrontendRequest.RemMemReg => 40,
        FrontendRequest.IotlbMsg => 32,
        FrontendRequest.GetInflightFd or FrontendRequest.SetInflightFd => 24,
        FrontendRequest.GetSharedObject => 16,
        FrontendRequest.SetMemTable or FrontendRequest.GetConfig or FrontendRequest.SetConfig or FrontendRequest.CreateCryptoSession => -1,
        _ => 8,
    };

    /// <summary>Every scenario of these classes.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string H = "header abuse";
        foreach (uint code in new uint[] { 0, 46, 99, 0x7fff, 0xffffffff })
        {
            yield return new(H, $"unknown request {code:x}", t => Kit.WithNegotiated(t, s => s.Raw(HostileSession.Header(code, 1 | 8, 0))));
        }

        foreach (uint flags in new uint[] { 0, 2, 3, 1 | 4, 1 | 0x10, 1 | 0x80000000, 0xffffffff })
        {
            yield return new(H, $"flags 0x{flags:x} on GET_FEATURES", t => Kit.WithRaw(t, s => s.Raw(HostileSession.Header(1, flags, 0))));
        }

        foreach (uint size in new uint[] { 0x1001, 0x10000, 0x7fffffff, 0xffffffff })
        {
            yield return new(H, $"size 0x{size:x} with a page of body", t => Kit.WithRaw(t, s =>
            {
                s.Raw(HostileSession.Header(5, 1, size));
                s.Raw(new byte[4096]);
            }));
        }

        yield return new(H, "size larger than sent, then close", t => Kit.WithRaw(t, s =>
        {
            s.Raw(HostileSession.Header((uint)FrontendRequest.SetFeatures, 1, 8));
            s.Raw(new byte[3]);
        }));
        for (int n = 1; n < VhostUserLimits.HeaderSize; n += 2)
        {
            int len = n;
            yield return new(H, $"truncated header ({len} bytes), then close", t => Kit.WithRaw(t, s => s.Raw(HostileSession.Header(1, 1, 0).AsSpan(0, len))));
        }

        yield return new(H, "truncated header, then hold the connection 300 ms", t => Kit.WithRaw(t, s =>
        {
            s.Raw(HostileSession.Header(1, 1, 0).AsSpan(0, 5));
            Thread.Sleep(300);
        }));
        yield return new(H, "header byte by byte (slow)", t => Kit.WithRaw(t, s =>
        {
            byte[] h = HostileSession.Header(1, 1, 0);
            for (int i = 0; i < h.Length; i++)
            {
                s.Raw(h.AsSpan(i, 1));
                Thread.Sleep(2);
            }

            s.Drain(1000);
        }));
        yield return new(H, "4 KiB of random bytes", t => Kit.WithRaw(t, s =>
        {
            var junk = new byte[4096];
            new Random(11).NextBytes(junk);
            s.Raw(junk);
        }));
        yield return new(H, "requests before SET_OWNER / SET_FEATURES", t => Kit.WithRaw(t, s =>
        {
            s.Send(FrontendRequest.SetVringNum, Kit.State(0, 64));
            s.Send(FrontendRequest.GetVringBase, Kit.State(0, 0));
            s.Send(FrontendRequest.SetVringEnable, Kit.State(0, 1));
        }));
        yield return new(H, "protocol features acked without offer", t => Kit.WithRaw(t, s => s.Send(FrontendRequest.SetProtocolFeatures, Kit.U64(ulong.MaxValue))));
        yield return new(H, "all virtio features acked", t => Kit.WithRaw(t, s => s.Send(FrontendRequest.SetFeatures, Kit.U64(ulong.MaxValue))));

        const string P = "payload size";
        foreach (FrontendRequest r in Enum.GetValues<FrontendRequest>())
        {
            int size = FixedSize(r);
            if (size < 0)
            {
                size = r == FrontendRequest.SetMemTable ? VhostUserLimits.MemoryHeaderSize + VhostUserLimits.MemoryRegionSize : VhostUserLimits.ConfigHeaderSize;
            }

            FrontendRequest req = r;
            if (size > 0)
            {
                int shortSize = size - 1;
                yield return new(P, $"{r} one byte short", t => Kit.WithNegotiated(t, s => s.Send(req, new byte[shortSize])));
            }

            int longSize = size + 1;
            yield return new(P, $"{r} one byte long", t => Kit.WithNegotiated(t, s => s.Send(req, new byte[longSize])));
        }

        yield return new(P, "GET_CONFIG claiming 256 bytes with 4 sent", t => Kit.WithNegotiated(t, s =>
        {
            var body = new byte[VhostUserLimits.ConfigHeaderSize + 4];
            MemoryMarshal.Write(body, new VhostUserConfigHeader(0, 256, VhostUserConfigFlags.None));
            s.Send(FrontendRequest.GetConfig, body);
        }));
        foreach ((uint off, uint size) in new (uint, uint)[] { (0, 0), (0, 0x1000), (0xfffffff0, 16), (0xffffffff, 1), (8, 16), (15, 1) })
        {
            yield return new(P, $"GET_CONFIG offset 0x{off:x} size 0x{size:x}", t => Kit.WithNegotiated(t, s =>
            {
                var body = new byte[VhostUserLimits.ConfigHeaderSize + Math.Min(size, 256)];
                MemoryMarshal.Write(body, new VhostUserConfigHeader(off, size, VhostUserConfigFlags.None));
                s.Send(FrontendRequest.GetConfig, body);
            }));
            yield return new(P, $"SET_CONFIG offset 0x{off:x} size 0x{size:x}", t => Kit.WithNegotiated(t, s =>
            {
                var body = new byte[VhostUserLimits.ConfigHeaderSize + Math.Min(size, 256)];
                MemoryMarshal.Write(body, new VhostUserConfigHeader(off, size, VhostUserConfigFlags.None));
                s.Send(FrontendRequest.SetConfig, body);
            }));
        }

        const string F = "fds";
        foreach (FrontendRequest r in new[] { FrontendRequest.GetFeatures, FrontendRequest.SetFeatures, FrontendRequest.SetOwner, FrontendRequest.SetVringNum, FrontendRequest.SetVringAddr, FrontendRequest.GetVringBase, FrontendRequest.GetConfig, FrontendRequest.SetVringEnable, FrontendRequest.SetStatus, FrontendRequest.RemMemReg, FrontendRequest.GetInflightFd })
        {
            FrontendRequest req = r;
            int size = Math.Max(0, FixedSize(r));
            if (r == FrontendRequest.GetConfig)
            {
                size = VhostUserLimits.ConfigHeaderSize + 4;
            }

            yield return new(F, $"stray eventfd on {r}", t => Kit.WithNegotiated(t, s =>
            {
                using EventFd e = Kit.EventFd();
                s.Send(req, new byte[size], [e]);
            }));
        }

        yield return new(F, "8 stray memfds on GET_QUEUE_NUM", t => Kit.WithNegotiated(t, s =>
        {
            SafeHandle[] fds = [.. Enumerable.Range(0, 8).Select(_ => Kit.MemFd(4096))];
            s.Send(FrontendRequest.GetQueueNum, ReadOnlySpan<byte>.Empty, fds);
            foreach (SafeHandle f in fds)
            {
                f.Dispose();
            }
        }));
        yield return new(F, "9 fds (over the limit) on SET_MEM_TABLE", t => Kit.WithNegotiated(t, s =>
        {
            SafeHandle[] fds = [.. Enumerable.Range(0, 9).Select(_ => Kit.MemFd(4096))];
            s.Raw([.. HostileSession.Header(5, 1 | 8, 8 + 32), .. Kit.MemTable(1, new VhostUserMemoryRegion(0, 4096, 0x10000, 0))], fds);
            foreach (SafeHandle f in fds)
            {
                f.Dispose();
            }
        }));
        yield return new(F, "fds with body bytes (second sendmsg)", t => Kit.WithNegotiated(t, s =>
        {
            using EventFd e = Kit.EventFd();
            s.Raw(HostileSession.Header((uint)FrontendRequest.SetFeatures, 1, 8));
            s.Raw(new byte[8], [e]);
        }));
        yield return new(F, "fd on the middle of a header", t => Kit.WithNegotiated(t, s =>
        {
            using EventFd e = Kit.EventFd();
            byte[] h = HostileSession.Header((uint)FrontendRequest.GetFeatures, 1, 0);
            s.Raw(h.AsSpan(0, 4));
            s.Raw(h.AsSpan(4), [e]);
        }));
        yield return new(F, "memory table: 2 regions, 1 fd", t => Kit.WithNegotiated(t, s =>
        {
            using var m = Kit.MemFd(1 << 16);
            s.Send(FrontendRequest.SetMemTable, Kit.MemTable(2, new(0, 0x8000, 0x100000, 0), new(0x8000, 0x8000, 0x108000, 0x8000)), [m]);
        }));
        yield return new(F, "memory table: 1 region, 3 fds", t => Kit.WithNegotiated(t, s =>
        {
            using var a = Kit.MemFd(1 << 16);
            using var b = Kit.MemFd(1 << 16);
            using var c = Kit.MemFd(1 << 16);
            s.Send(FrontendRequest.SetMemTable, Kit.MemTable(1, Kit.R(0, 0x8000, 0x100000, 0)), [a, b, c]);
        }));
        yield return new(F, "memory table: no fd", t => Kit.WithNegotiated(t, s => s.Send(FrontendRequest.SetMemTable, Kit.MemTable(1, Kit.R(0, 0x8000, 0x100000, 0)))));
        foreach ((string kind, Func<SafeHandle[]> make) in WrongKinds())
        {
            Func<SafeHandle[]> m = make;
            yield return new(F, $"{kind} as guest memory", t => Kit.WithNegotiated(t, s => Use(m, fds => s.Send(FrontendRequest.SetMemTable, Kit.MemTable(1, Kit.R(0, 0x10000, 0x100000, 0)), [fds[0]]))));
            yield return new(F, $"{kind} as ADD_MEM_REG", t => Kit.WithNegotiated(t, s => Use(m, fds => s.Send(FrontendRequest.AddMemReg, new VhostUserSingleMemoryRegion(new(0, 0x10000, 0x100000, 0)), fds[0]))));
            yield return new(F, $"{kind} as kick fd", t => Kit.WithReady(t, (s, _) => Use(m, fds => s.Send(FrontendRequest.SetVringKick, Kit.U64(0), [fds[0]]))));
            yield return new(F, $"{kind} as call fd", t => Kit.WithReady(t, (s, _) => Use(m, fds => s.Send(FrontendRequest.SetVringCall, Kit.U64(0), [fds[0]]))));
            yield return new(F, $"{kind} as err fd", t => Kit.WithReady(t, (s, _) => Use(m, fds => s.Send(FrontendRequest.SetVringErr, Kit.U64(0), [fds[0]]))));
            yield return new(F, $"{kind} as log fd", t => Kit.WithReady(t, (s, _) => Use(m, fds => s.Send(FrontendRequest.SetLogBase, HostileSession.Bytes(new VhostUserLog(0x1000, 0)), [fds[0]]))));
            yield return new(F, $"{kind} as inflight fd", t => Kit.WithReady(t, (s, _) => Use(m, fds => s.Send(FrontendRequest.SetInflightFd, new VhostUserInflight { MmapSize = 0x1000, QueueCount = 1, QueueSize = 64 }, fds[0]))));
            yield return new(F, $"{kind} as back-end channel", t => Kit.WithReady(t, (s, _) => Use(m, fds => s.Send(FrontendRequest.SetBackendReqFd, ReadOnlySpan<byte>.Empty, [fds[0]]))));
        }

        yield return new(F, "kick with NOFD flag and an fd", t => Kit.WithReady(t, (s, _) =>
        {
            using EventFd e = Kit.EventFd();
            s.Send(FrontendRequest.SetVringKick, Kit.U64(VhostUserLimits.VringNoFdFlag), [e]);
        }));
        yield return new(F, "kick without NOFD flag and no fd", t => Kit.WithReady(t, (s, _) => s.Send(FrontendRequest.SetVringKick, Kit.U64(0))));
    }

    private static IEnumerable<(string, Func<SafeHandle[]>)> WrongKinds()
    {
        yield return ("pipe", () =>
        {
            var (r, w) = Kit.Pipe();
            return [r, w];
        });
        yield return ("eventfd", () => [Kit.EventFd()]);
        yield return ("directory", () => [Kit.Directory()]);
        yield return ("/dev/null", () => [Kit.DevNull()]);
        yield return ("empty regular file", () => [Kit.RegularFile(0)]);
        yield return ("memfd of 4 KiB", () => [Kit.MemFd(4096)]);
        yield return ("listening socket", () =>
        {
            string path = Path.Combine(Path.GetTempPath(), $"hostile-l-{Guid.NewGuid():N}.sock");
            var l = new Vhost.User.VhostUserListener(path);
            SafeHandle h = Fd.Duplicate(l.Handle);
            l.Dispose();
            return [h];
        });
    }

    private static void Use(Func<SafeHandle[]> make, Action<SafeHandle[]> use)
    {
        SafeHandle[] fds = make();
        try
        {
            use(fds);
        }
        finally
        {
            foreach (SafeHandle f in fds)
            {
                f.Dispose();
            }
        }
    }
}
