using System.Runtime.InteropServices;
using Vhost.HostileTests.Targets;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Testing;
using Vhost.Vmm;
using VhostUserBackend.Virtio;

namespace Vhost.HostileTests.Frontend;

/// <summary>Hostile guest rings behind a well-formed front-end, and resource exhaustion.</summary>
public static class GuestAndExhaustionScenarios
{
    private const VirtqDescriptorFlags Next = VirtqDescriptorFlags.Next;
    private const VirtqDescriptorFlags Write = VirtqDescriptorFlags.Write;
    private const VirtqDescriptorFlags Indirect = VirtqDescriptorFlags.Indirect;

    /// <summary>Every scenario of these classes.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string G = "hostile guest rings";
        ulong far = 0x40_0000_0000;
        (string, Func<GuestRam, ulong, VirtqDescriptor[]>)[] chains =
        [
            ("self loop", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 0 }]),
            ("two-descriptor cycle", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 1 }, new() { Address = d, Length = 8, Flags = Next, Next = 0 }]),
            ("chain through every descriptor and back", (_, d) => [.. Enumerable.Range(0, 64).Select(i => new VirtqDescriptor { Address = d, Length = 1, Flags = Next, Next = (ushort)((i + 1) % 64) })]),
            ("next out of range", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 1000 }]),
            ("next 0xffff", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 0xffff }]),
            ("buffer outside memory", (_, _) => [new() { Address = far, Length = 64 }]),
            ("buffer wrapping 2^64", (_, _) => [new() { Address = ulong.MaxValue - 16, Length = 64 }]),
            ("buffer straddling the region end", (r, _) => [new() { Address = r.Regions[0].Size - 8, Length = 64, Flags = Write }]),
            ("writable buffer of 4 GiB", (_, d) => [new() { Address = d, Length = 8 }, new() { Address = d, Length = uint.MaxValue, Flags = Write }]),
            ("zero-length buffers", (_, d) => [new() { Address = d, Length = 0, Flags = Next, Next = 1 }, new() { Address = d, Length = 0, Flags = Write }]),
            ("zero-length header then data", (_, d) => [new() { Address = d, Length = 0, Flags = Next, Next = 1 }, new() { Address = d, Length = 16, Flags = Write }]),
            ("inverted directions (writable before readable)", (_, d) => [new() { Address = d, Length = 8, Flags = Next | Write, Next = 1 }, new() { Address = d, Length = 8 }]),
            ("indirect table of length 0", (_, d) => [new() { Address = d, Length = 0, Flags = Indirect }]),
            ("indirect table length not a multiple of 16", (_, d) => [new() { Address = d, Length = 17, Flags = Indirect }]),
            ("indirect table huge", (_, d) => [new() { Address = d, Length = 0x100000, Flags = Indirect }]),
            ("indirect table outside memory", (_, _) => [new() { Address = far, Length = 32, Flags = Indirect }]),
            ("indirect table misaligned", (_, d) => [new() { Address = d + 3, Length = 32, Flags = Indirect }]),
            ("indirect with NEXT", (_, d) => [new() { Address = d, Length = 32, Flags = Indirect | Next, Next = 1 }, new() { Address = d, Length = 8 }]),
            ("indirect with WRITE", (_, d) => [new() { Address = d, Length = 32, Flags = Indirect | Write }]),
            ("indirect after a direct descriptor", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 1 }, new() { Address = d, Length = 32, Flags = Indirect }]),
        ];
        foreach ((string name, Func<GuestRam, ulong, VirtqDescriptor[]> make) in chains)
        {
            yield return new(G, name, t => OnRing(t, (dev, q, data) =>
            {
                VirtqDescriptor[] descriptors = make(dev.Ram, data);
                for (int i = 0; i < descriptors.Length; i++)
                {
                    q.Driver.WriteDescriptor((ushort)i, descriptors[i]);
                }

                PublishHead(q, 0);
            }));
        }

        (string, Func<ulong, ulong, VirtqDescriptor[]>)[] tables =
        [
            ("indirect self-referencing", (table, d) => [new() { Address = table, Length = 32, Flags = Indirect }, new() { Address = d, Length = 8 }]),
            ("indirect nested", (table, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 1 }, new() { Address = table, Length = 16, Flags = Indirect }]),
            ("indirect loop", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 1 }, new() { Address = d, Length = 8, Flags = Next, Next = 0 }]),
            ("indirect next out of range", (_, d) => [new() { Address = d, Length = 8, Flags = Next, Next = 7 }, new() { Address = d, Length = 8 }]),
            ("indirect buffer outside memory", (_, _) => [new() { Address = far, Length = 8 }, new() { Address = far, Length = 8, Flags = Write }]),
        ];
        foreach ((string name, Func<ulong, ulong, VirtqDescriptor[]> make) in tables)
        {
            yield return new(G, name, t => OnRing(t, (dev, q, data) =>
            {
                ulong table = dev.Ram.Allocate(32, 16);
                VirtqDescriptor[] entries = make(table, data);
                dev.Ram.Write(table, MemoryMarshal.AsBytes(entries.AsSpan()));
                q.Driver.WriteDescriptor(0, new VirtqDescriptor { Address = table, Length = (uint)(entries.Length * 16), Flags = Indirect });
                PublishHead(q, 0);
            }));
        }

        yield return new(G, "head index out of range", t => OnRing(t, (_, q, _) => PublishHead(q, 1000)));
        yield return new(G, "head index 0xffff", t => OnRing(t, (_, q, _) => PublishHead(q, 0xffff)));
        yield return new(G, "avail.idx jumps past the queue size", t => OnRing(t, (_, q, _) =>
        {
            q.Driver.SetAvailIndex(1000);
            q.Kick.Signal();
        }));
        yield return new(G, "avail.idx goes backwards", t => OnRing(t, (dev, q, data) =>
        {
            q.Driver.WriteDescriptor(0, new VirtqDescriptor { Address = data, Length = 8 });
            PublishHead(q, 0);
            Thread.Sleep(20);
            q.Driver.SetAvailIndex(0xfff0);
            q.Kick.Signal();
        }));
        yield return new(G, "same head published 64 times", t => OnRing(t, (dev, q, data) =>
        {
            q.Driver.WriteDescriptor(0, new VirtqDescriptor { Address = data, Length = 8, Flags = Next, Next = 1 });
            q.Driver.WriteDescriptor(1, new VirtqDescriptor { Address = data + 64, Length = 8, Flags = Write });
            for (ushort i = 0; i < 64; i++)
            {
                q.Driver.WriteAvailEntry(i, 0);
            }

            q.Driver.SetAvailIndex(64);
            q.Kick.Signal();
        }));
        yield return new(G, "kick storm (10 000 kicks)", t => OnRing(t, (dev, q, data) =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                q.Kick.Signal();
            }
        }));
        yield return new(G, "every avail entry a loop", t => OnRing(t, (dev, q, data) =>
        {
            for (ushort i = 0; i < 64; i++)
            {
                q.Driver.WriteDescriptor(i, new VirtqDescriptor { Address = data, Length = 8, Flags = Next, Next = i });
                q.Driver.WriteAvailEntry(i, i);
            }

            q.Driver.SetAvailIndex(64);
            q.Kick.Signal();
        }));
        yield return new(G, "used ring rewritten by the guest", t => OnRing(t, (dev, q, data) =>
        {
            dev.Ram.GetSpan(q.Driver.UsedRingAddress, 4 + (8 * 64)).Fill(0xff);
            q.Driver.WriteDescriptor(0, new VirtqDescriptor { Address = data, Length = 8 });
            PublishHead(q, 0);
        }));

        const string X = "resource exhaustion";
        foreach ((ushort queues, ushort size) in new (ushort, ushort)[] { (0xffff, 0xffff), (2, 0xffff), (0xffff, 1), (2, 0x8000), (0, 64), (2, 0) })
        {
            yield return new(X, $"GET_INFLIGHT_FD {queues} x {size}", t => Kit.WithReady(t, (s, _) =>
                s.Send(FrontendRequest.GetInflightFd, new VhostUserInflight { QueueCount = queues, QueueSize = size })));
        }

        yield return new(X, "SET_INFLIGHT_FD claiming 1 TiB", t => Kit.WithReady(t, (s, _) =>
        {
            using var m = Kit.MemFd(0x1000);
            s.Send(FrontendRequest.SetInflightFd, new VhostUserInflight { MmapSize = 1UL << 40, QueueCount = 2, QueueSize = 0x8000 }, m);
        }));
        yield return new(X, "10 000 requests in one write (no replies)", t => Kit.WithNegotiated(t, s =>
        {
            byte[] one = [.. HostileSession.Header((uint)FrontendRequest.SetVringNum, 1, 8), .. Kit.State(0, 64)];
            var all = new byte[one.Length * 10_000];
            for (int i = 0; i < 10_000; i++)
            {
                one.CopyTo(all, i * one.Length);
            }

            s.Raw(all);
            s.Send(FrontendRequest.GetQueueNum, ReadOnlySpan<byte>.Empty, needReply: false);
        }));
        yield return new(X, "10 000 GET_FEATURES in one write, replies read meanwhile", t => Kit.WithNegotiated(t, s =>
        {
            byte[] one = HostileSession.Header((uint)FrontendRequest.GetFeatures, 1, 0);
            var all = new byte[one.Length * 10_000];
            for (int i = 0; i < 10_000; i++)
            {
                one.CopyTo(all, i * one.Length);
            }

            var reader = new Thread(() => s.Drain(2000));
            reader.Start();
            s.Raw(all);
            reader.Join();
        }));
        yield return new(X, "10 000 GET_FEATURES, replies never read, then close", t => Kit.WithNegotiated(t, s =>
        {
            byte[] one = HostileSession.Header((uint)FrontendRequest.GetFeatures, 1, 0);
            var all = new byte[one.Length * 2000];
            for (int i = 0; i < 2000; i++)
            {
                one.CopyTo(all, i * one.Length);
            }

            global::Fd.SetNonBlocking(s.Connection.Handle, true);
            for (int i = 0; i < 5; i++)
            {
                s.Raw(all);
            }
        }));
        yield return new(X, "1 000 connect/close cycles", t =>
        {
            for (int i = 0; i < 1000; i++)
            {
                using VhostUserConnection c = VhostUserConnector.Connect(t.SocketPath, TimeSpan.FromSeconds(5));
                if (i % 3 == 1)
                {
                    c.SendRaw(HostileSession.Header(1, 1, 0).AsSpan(0, i % 12));
                }
            }
        });
        yield return new(X, "idle connection held 500 ms", t => Kit.WithRaw(t, _ => Thread.Sleep(500)));
    }

    private static void PublishHead(VmmQueue q, ushort head)
    {
        ushort idx = q.Driver.AvailIndex;
        q.Driver.WriteAvailEntry((ushort)(idx & (q.Driver.Size - 1)), head);
        q.Driver.SetAvailIndex((ushort)(idx + 1));
        q.Kick.Signal();
    }

    /// <summary>A well-formed device (VmmDevice start-up, indirect descriptors offered), then a hostile ring, 30 ms for the daemon to walk it.</summary>
    private static void OnRing(IDaemonTarget t, Action<VmmDevice, VmmQueue, ulong> plant)
    {
        var options = new VmmDeviceOptions { QueueCount = 1, QueueSize = 64, MemorySize = Kit.RamSize, MaxIndirectEntries = 8 };
        using VmmDevice dev = VmmDevice.Connect(t.SocketPath, options, TimeSpan.FromSeconds(5));
        ulong data = dev.Ram.Allocate(4096, 64);
        plant(dev, dev.Queues[0], data);
        Thread.Sleep(30);
    }
}
