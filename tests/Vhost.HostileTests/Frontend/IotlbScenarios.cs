using System.Runtime.InteropServices;
using Vhost.HostileTests.Targets;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// VIRTIO_F_ACCESS_PLATFORM abused: IOTLB_MSG before the features and without ACCESS_PLATFORM,
/// storms of updates and invalidations, overlapping, wrapping and huge entries, invalidations of
/// ranges never mapped, types and permissions that do not belong, a ring whose IOVAs nobody maps,
/// and a running ring whose buffers miss, are read-only, map outside guest memory or are unmapped
/// while it runs. The daemon refuses or fails the ring cleanly; it never hangs its control thread,
/// crashes or touches memory outside the guest's.
/// </summary>
public static class IotlbScenarios
{
    /// <summary>The category name.</summary>
    public const string Category = "iotlb";

    private const ulong IovaBase = 0x1_0000_0000;
    private const VhostIotlbAccess RW = VhostIotlbAccess.ReadWrite;

    /// <summary>Every scenario of this class.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string C = Category;
        yield return new(C, "IOTLB_MSG before any negotiation", t => Kit.WithRaw(t, s => Update(s, 0, 0x1000, 0x1000, RW)));
        yield return new(C, "IOTLB_MSG without ACCESS_PLATFORM acked", t => Kit.WithReady(t, (s, ram) => Update(s, 0, 0x1000, Kit.UserAddress(ram, 0), RW)));
        yield return new(C, "update storm: 20000 page entries", t => WithIommu(t, x =>
        {
            for (ulong i = 0; i < 20000; i++)
            {
                Post(x.S, VhostIotlbType.Update, IovaBase + (i * 0x1000), 0x1000, x.User(i * 0x1000 % Kit.RamSize), RW);
                if (i % 16 == 15)
                {
                    x.S.Drain(200);
                }
            }

            x.S.Drain(2000);
        }));
        yield return new(C, "update and invalidate storm, interleaved and overlapping", t => WithIommu(t, x =>
        {
            var random = new Random(20);
            for (int i = 0; i < 20000; i++)
            {
                ulong iova = IovaBase + ((ulong)random.Next(0, 4096) * 0x800);
                ulong size = (ulong)random.Next(1, 64) * 0x800;
                Post(x.S, i % 3 == 2 ? VhostIotlbType.Invalidate : VhostIotlbType.Update, iova, size, x.User((ulong)random.Next(0, 128) * 0x1000), (VhostIotlbAccess)random.Next(1, 4));
                if (i % 16 == 15)
                {
                    x.S.Drain(200);
                }
            }

            x.S.Drain(2000);
        }));
        yield return new(C, "overlapping updates with every permission", t => WithIommu(t, x =>
        {
            Update(x.S, IovaBase, 0x10000, x.User(0), RW);
            Update(x.S, IovaBase + 0x800, 0x1000, x.User(0x4000), VhostIotlbAccess.ReadOnly);
            Update(x.S, IovaBase + 0x400, 0x100, x.User(0x8000), VhostIotlbAccess.WriteOnly);
            Update(x.S, IovaBase, 0x10000, x.User(0x1000), RW);
        }));
        yield return new(C, "entry ending at 2^64 - 1", t => WithIommu(t, x => Update(x.S, ulong.MaxValue - 0xfff, 0x1000, x.User(0), RW)));
        yield return new(C, "entry wrapping past 2^64", t => WithIommu(t, x => Update(x.S, ulong.MaxValue - 0xfff, 0x2000, x.User(0), RW)));
        yield return new(C, "user address wrapping past 2^64", t => WithIommu(t, x => Update(x.S, 0, 0x2000, ulong.MaxValue - 0xfff, RW)));
        yield return new(C, "one entry for all of IOVA space, onto guest memory's start", t => WithIommu(t, x => Update(x.S, 0, ulong.MaxValue, x.User(0), RW)));
        yield return new(C, "zero-sized update and invalidation", t => WithIommu(t, x =>
        {
            Update(x.S, IovaBase, 0, x.User(0), RW);
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.Invalidate, IovaBase, 0, 0, RW));
        }));
        yield return new(C, "invalidations of ranges never mapped, and of everything", t => WithIommu(t, x =>
        {
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.Invalidate, 0x1234, 0x10, 0, VhostIotlbAccess.None));
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.Invalidate, 0, ulong.MaxValue, 0, VhostIotlbAccess.None));
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.Invalidate, 1, ulong.MaxValue, 0, VhostIotlbAccess.None));
        }));
        yield return new(C, "types and permissions that do not belong (MISS, ACCESS_FAIL, 0, 7, no permission, permission 4)", t => WithIommu(t, x =>
        {
            foreach (VhostIotlbType type in new[] { VhostIotlbType.Miss, VhostIotlbType.AccessFail, (VhostIotlbType)0, (VhostIotlbType)7 })
            {
                x.S.Send(FrontendRequest.IotlbMsg, Message(type, IovaBase, 0x1000, x.User(0), RW));
            }

            Update(x.S, IovaBase, 0x1000, x.User(0), VhostIotlbAccess.None);
            Update(x.S, IovaBase, 0x1000, x.User(0), (VhostIotlbAccess)4);
        }));
        yield return new(C, "unbalanced batch brackets", t => WithIommu(t, x =>
        {
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.BatchEnd, 0, 0, 0, VhostIotlbAccess.None));
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.BatchBegin, 0, 0, 0, VhostIotlbAccess.None));
            x.S.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.BatchBegin, 0, 0, 0, VhostIotlbAccess.None));
        }));
        yield return new(C, "a ring whose IOVAs nobody maps, then the front-end leaves", t => WithIommu(t, x =>
        {
            var driver = new SplitQueueDriver(x.Ram, 16);
            using var kick = new EventFd();
            StartRing(x, driver, kick);
            x.ReadMisses(200);
        }));
        yield return new(C, "a ring whose areas map outside guest memory or read-only", t => WithIommu(t, x =>
        {
            var driver = new SplitQueueDriver(x.Ram, 16);
            Update(x.S, IovaBase + driver.DescriptorTableAddress, 0x100, x.User(0) + (8UL << 30), RW);
            Update(x.S, IovaBase + driver.UsedRingAddress, 0x100, x.User(driver.UsedRingAddress), VhostIotlbAccess.ReadOnly);
            using var kick = new EventFd();
            StartRing(x, driver, kick);
            x.ReadMisses(200);
        }));
        yield return new(C, "running ring: buffers missing, read-only, outside memory, unmapped while it runs", t => WithIommu(t, x =>
        {
            var driver = new SplitQueueDriver(x.Ram, 16, maxIndirectEntries: 4);
            using var kick = new EventFd();

            // The ring and a data page are mapped (identity plus IovaBase); nothing else is.
            Update(x.S, IovaBase, Kit.RamSize / 2, x.User(0), RW);
            StartRing(x, driver, kick);
            ulong data = x.Ram.Allocate(0x4000, 0x1000);
            Update(x.S, IovaBase + data + 0x1000, 0x1000, x.User(data + 0x1000), VhostIotlbAccess.ReadOnly);
            Update(x.S, IovaBase + data + 0x2000, 0x1000, x.User(0) + (16UL << 30), RW);
            Add(driver, kick, new VirtqBuffer(IovaBase + data, 64, false), new VirtqBuffer(IovaBase + 0x4000_0000, 64, true));
            Add(driver, kick, new VirtqBuffer(IovaBase + data, 64, false), new VirtqBuffer(IovaBase + data + 0x1000, 64, true));
            Add(driver, kick, new VirtqBuffer(IovaBase + data, 64, false), new VirtqBuffer(IovaBase + data + 0x2000, 64, true));
            Add(driver, kick, new VirtqBuffer(IovaBase + data + 0xff0, 0x20, false), new VirtqBuffer(ulong.MaxValue - 0x10, 0x40, true));
            for (int i = 0; i < 200; i++)
            {
                Post(x.S, VhostIotlbType.Invalidate, IovaBase + data, 0x1000, 0, RW);
                Add(driver, kick, new VirtqBuffer(IovaBase + data, 64, false), new VirtqBuffer(IovaBase + data + 0x800, 64, true));
                Post(x.S, VhostIotlbType.Update, IovaBase + data, 0x1000, x.User(data), RW);
                x.S.Drain(200);
            }

            x.S.Drain(1000);
            x.ReadMisses(1500);
        }));
    }

    private static void WithIommu(IDaemonTarget t, Action<IommuSession> attack)
    {
        using var x = IommuSession.Open(t);
        attack(x);
        x.S.Drain(20);
    }

    private static void StartRing(IommuSession x, SplitQueueDriver driver, EventFd kick)
    {
        x.S.Send(FrontendRequest.SetVringNum, Kit.State(0, driver.Size));
        x.S.Send(FrontendRequest.SetVringBase, Kit.State(0, 0));
        x.S.Send(FrontendRequest.SetVringAddr, new VhostUserVringAddress
        {
            Index = 0,
            DescriptorTableAddress = IovaBase + driver.DescriptorTableAddress,
            UsedRingAddress = IovaBase + driver.UsedRingAddress,
            AvailableRingAddress = IovaBase + driver.AvailRingAddress,
        });
        x.S.Send(FrontendRequest.SetVringKick, Kit.U64(0), [kick]);
        x.S.Send(FrontendRequest.SetVringEnable, Kit.State(0, 1));
    }

    private static void Add(SplitQueueDriver driver, EventFd kick, params VirtqBuffer[] buffers)
    {
        while (driver.TryGetUsed(out _, out _))
        {
        }

        if (!driver.CanAdd(buffers.Length))
        {
            return;
        }

        driver.AddBuffers(buffers);
        driver.Publish();
        kick.Signal();
    }

    private static void Update(HostileSession s, ulong iova, ulong size, ulong userAddress, VhostIotlbAccess permission)
        => s.Send(FrontendRequest.IotlbMsg, Message(VhostIotlbType.Update, iova, size, userAddress, permission));

    /// <summary>Sends without asking for an acknowledgement and without reading replies (a storm).</summary>
    private static void Post(HostileSession s, VhostIotlbType type, ulong iova, ulong size, ulong userAddress, VhostIotlbAccess permission)
        => s.Send(FrontendRequest.IotlbMsg, Message(type, iova, size, userAddress, permission), needReply: false);

    private static byte[] Message(VhostIotlbType type, ulong iova, ulong size, ulong userAddress, VhostIotlbAccess permission)
        => HostileSession.Bytes(new VhostUserIotlbMessage { Iova = iova, Size = size, UserAddress = userAddress, Permission = permission, Type = type });

    /// <summary>A session that acked ACCESS_PLATFORM (when offered), gave a back-end channel and set a memory table.</summary>
    private sealed class IommuSession : IDisposable
    {
        private readonly VhostUserConnection? _channel;

        private IommuSession(HostileSession s, GuestRam ram, VhostUserConnection? channel)
        {
            S = s;
            Ram = ram;
            _channel = channel;
        }

        public HostileSession S { get; }

        public GuestRam Ram { get; }

        public static IommuSession Open(IDaemonTarget t)
        {
            HostileSession s = HostileSession.Open(t.SocketPath);
            GuestRam ram = GuestRam.Create(Kit.RamSize);
            VhostUserConnection? ours = null;
            try
            {
                s.Connection.Send((uint)FrontendRequest.GetFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
                ulong offered;
                using (VhostUserMessage m = s.Connection.Receive(5000))
                {
                    offered = m.Read<VhostUserU64>().Value;
                }

                s.Connection.Send((uint)FrontendRequest.GetProtocolFeatures, VhostUserHeaderFlags.None, ReadOnlySpan<byte>.Empty);
                ulong protocol;
                using (VhostUserMessage m = s.Connection.Receive(5000))
                {
                    protocol = m.Read<VhostUserU64>().Value;
                }

                ulong acked = protocol & (ulong)(HostileSession.Protocol | VhostUserProtocolFeatures.BackendRequest);
                s.Send(FrontendRequest.SetProtocolFeatures, new VhostUserU64 { Value = acked });
                s.Send(FrontendRequest.SetOwner, ReadOnlySpan<byte>.Empty);
                s.Send(FrontendRequest.SetFeatures, new VhostUserU64 { Value = offered & ((ulong)(VirtioFeatures.Version1 | VirtioFeatures.AccessPlatform) | (ulong)VhostUserVirtioFeatures.ProtocolFeatures) });
                if ((acked & (ulong)VhostUserProtocolFeatures.BackendRequest) != 0)
                {
                    (VhostUserConnection a, VhostUserConnection b) = VhostUserConnection.CreatePair();
                    ours = a;
                    using (b)
                    {
                        s.Send(FrontendRequest.SetBackendReqFd, ReadOnlySpan<byte>.Empty, [b.Handle]);
                    }
                }

                s.MemoryTable(ram);
                return new IommuSession(s, ram, ours);
            }
            catch
            {
                ours?.Dispose();
                s.Dispose();
                ram.Dispose();
                throw;
            }
        }

        public ulong User(ulong gpa) => Kit.UserAddress(Ram, gpa);

        /// <summary>Reads (and drops) what the daemon sends on the back-end channel for up to <paramref name="ms"/>: its IOTLB misses, never answered.</summary>
        public int ReadMisses(int ms)
        {
            if (_channel is null)
            {
                Thread.Sleep(ms);
                return 0;
            }

            int n = 0;
            long deadline = Environment.TickCount64 + ms;
            while (Environment.TickCount64 < deadline)
            {
                try
                {
                    using VhostUserMessage m = _channel.Receive((int)Math.Max(1, deadline - Environment.TickCount64));
                    n++;
                }
                catch (Exception e) when (e is VhostUserException or TimeoutException)
                {
                    break;
                }
            }

            return n;
        }

        public void Dispose()
        {
            S.Dispose();
            _channel?.Dispose();
            Ram.Dispose();
        }
    }
}
