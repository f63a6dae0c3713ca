using CsCheck;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Tests.Virtio;

/// <summary>
/// The guest-driver model against the device queue over long random runs: every chain the
/// driver adds is popped once, in order, with its buffers and contents intact; every completion
/// reaches the driver with the device's data; no kick and no interrupt is ever lost; split
/// rings cross the 16-bit index wrap, and with EVENT_IDX each interrupt decision matches the
/// spec's vring_need_event.
/// </summary>
public sealed class QueuePropertyTests
{
    private const int MaxBuffers = 4;
    private const int MaxLength = 48;

    [Fact]
    public void Split_WithoutEventIdx() => Run(packed: false, eventIdx: false, chains: 70_000, iterations: 3);

    [Fact]
    public void Split_WithEventIdx() => Run(packed: false, eventIdx: true, chains: 70_000, iterations: 3);

    [Fact]
    public void Packed_WithoutEventIdx() => Run(packed: true, eventIdx: false, chains: 25_000, iterations: 5);

    [Fact]
    public void Packed_WithEventIdx() => Run(packed: true, eventIdx: true, chains: 25_000, iterations: 5);

    private static void Run(bool packed, bool eventIdx, int chains, int iterations)
    {
        Gen<ushort> sizes = packed ? Gen.OneOf<ushort>(1, 3, 8, 100, 256) : Gen.OneOf<ushort>(1, 2, 8, 64, 256);
        Gen.Select(Gen.Int, sizes, Gen.Bool, Gen.Bool)
            .Sample(t => Simulate(packed, eventIdx, chains, t.Item1, t.Item2, t.Item3, t.Item4), iter: iterations, threads: 1);
    }

    private static void Simulate(bool packed, bool eventIdx, int target, int seed, ushort size, bool indirect, bool outOfOrder)
    {
        var rnd = new Random(seed);
        using QueueRig rig = packed
            ? QueueRig.CreatePacked(size, eventIdx, indirect ? MaxBuffers : 0)
            : QueueRig.CreateSplit(size, eventIdx, indirect ? MaxBuffers : 0);
        ulong areaSize = MaxBuffers * MaxLength;
        ulong dataBase = rig.Ram.Allocate(size * areaSize, 64);
        var freeAreas = new Stack<int>(Enumerable.Range(0, size));
        var outstanding = new Dictionary<ushort, Expected>();
        var addOrder = new Queue<ushort>();
        var popped = new List<(DescriptorChain Chain, uint Written)>();
        bool deviceSleeping = false;
        bool driverSleeping = false;
        bool signalledValid = false;
        ushort signalledUsed = 0;
        long completed = 0;
        long interruptsSent = 0;
        long kicksSent = 0;
        byte sequence = 0;
        Span<VirtqBuffer> buffers = stackalloc VirtqBuffer[MaxBuffers];

        while (completed < target)
        {
            switch (rnd.Next(4))
            {
                case 0: // the driver adds a burst of chains, then decides whether to kick
                {
                    int burst = rnd.Next(1, 6);
                    int added = 0;
                    for (int n = 0; n < burst; n++)
                    {
                        int count = rnd.Next(1, MaxBuffers + 1);
                        bool viaTable = indirect && rnd.Next(2) == 0;
                        bool fits = packed ? rig.Packed!.CanAdd(count, viaTable) : rig.Split!.CanAdd(count, viaTable);
                        if (!fits)
                        {
                            break;
                        }

                        int readable = rnd.Next(0, count + 1);
                        int area = freeAreas.Pop();
                        var expected = new Expected(area, new VirtqBuffer[count], new byte[count][]);
                        for (int i = 0; i < count; i++)
                        {
                            ulong address = dataBase + ((ulong)area * areaSize) + ((ulong)i * MaxLength);
                            var buffer = new VirtqBuffer(address, (uint)rnd.Next(1, MaxLength + 1), i >= readable);
                            buffers[i] = buffer;
                            expected.Buffers[i] = buffer;
                            if (!buffer.IsWriteOnly)
                            {
                                expected.Contents[i] = new byte[buffer.Length];
                                rnd.NextBytes(expected.Contents[i]);
                                rig.Ram.Write(address, expected.Contents[i]);
                            }
                        }

                        ushort head = rig.Add(buffers[..count], viaTable);
                        Assert.True(outstanding.TryAdd(head, expected), $"head {head} handed out twice");
                        addOrder.Enqueue(head);
                        added++;
                    }

                    if (added > 0)
                    {
                        bool kick = packed ? rig.Packed!.NeedsKick() : rig.Split!.NeedsKick();
                        Assert.False(deviceSleeping && !kick, "lost kick: the device is waiting but the driver was told not to notify");
                        if (kick)
                        {
                            kicksSent++;
                            deviceSleeping = false;
                        }
                    }

                    break;
                }

                case 1: // the device (when awake) pops chains and checks them
                {
                    if (deviceSleeping)
                    {
                        break;
                    }

                    rig.Device.DisableNotification();
                    int want = rnd.Next(1, 8);
                    int got = 0;
                    while (got < want && rig.Device.TryPopDescriptorChain(out DescriptorChain chain))
                    {
                        got++;
                        Assert.True(addOrder.TryDequeue(out ushort expectedHead), "popped a chain the driver never added");
                        Assert.Equal(expectedHead, chain.Head);
                        Expected expected = outstanding[chain.Head];
                        int i = 0;
                        uint written = 0;
                        foreach (VirtqBuffer b in chain)
                        {
                            Assert.True(i < expected.Buffers.Length, "chain longer than added");
                            Assert.Equal(expected.Buffers[i], b);
                            if (b.IsWriteOnly)
                            {
                                byte[] data = new byte[b.Length];
                                data.AsSpan().Fill(unchecked((byte)(sequence + i)));
                                rig.Memory.Write(b.Address, data);
                                expected.Contents[i] = data;
                                written += b.Length;
                            }
                            else
                            {
                                byte[] data = new byte[b.Length];
                                rig.Memory.Read(b.Address, data);
                                Assert.Equal(expected.Contents[i], data);
                            }

                            i++;
                        }

                        Assert.Equal(expected.Buffers.Length, i);
                        sequence++;
                        popped.Add((chain, written));
                    }

                    if (got == 0 && !rig.Device.EnableNotification())
                    {
                        deviceSleeping = true;
                    }

                    break;
                }

                case 2: // the device completes some popped chains (in or out of order), then decides whether to interrupt
                {
                    int complete = rnd.Next(0, popped.Count + 1);
                    if (complete == 0)
                    {
                        break;
                    }

                    for (int n = 0; n < complete; n++)
                    {
                        int index = outOfOrder ? rnd.Next(popped.Count) : 0;
                        (DescriptorChain chain, uint written) = popped[index];
                        popped.RemoveAt(index);
                        rig.Device.AddUsed(chain.Head, written);
                        outstanding[chain.Head].Written = written;
                    }

                    bool notify = rig.Device.NeedsNotification();
                    if (!packed && eventIdx)
                    {
                        ushort newUsed = rig.SplitDevice.NextUsed;
                        ushort usedEvent = rig.Split!.UsedEvent;
                        bool expected = !signalledValid || (ushort)(newUsed - usedEvent - 1) < (ushort)(newUsed - signalledUsed);
                        Assert.Equal(expected, notify);
                        signalledValid = true;
                        signalledUsed = newUsed;
                    }

                    Assert.False(driverSleeping && !notify, "lost interrupt: the driver is waiting but the device was told not to notify");
                    if (notify)
                    {
                        interruptsSent++;
                        driverSleeping = false;
                    }

                    break;
                }

                default: // the driver (when awake) reaps completions, then re-arms or suppresses interrupts
                {
                    if (driverSleeping)
                    {
                        break;
                    }

                    while (rig.TryGetUsed(out ushort head, out uint length))
                    {
                        Assert.True(outstanding.Remove(head, out Expected? expected), $"completion for head {head}, which is not outstanding");
                        Assert.Equal(expected.Written, length);
                        for (int i = 0; i < expected.Buffers.Length; i++)
                        {
                            if (expected.Buffers[i].IsWriteOnly)
                            {
                                byte[] data = new byte[expected.Buffers[i].Length];
                                rig.Ram.Read(expected.Buffers[i].Address, data);
                                Assert.Equal(expected.Contents[i], data);
                            }
                        }

                        freeAreas.Push(expected.Area);
                        completed++;
                    }

                    bool arm = rnd.Next(2) == 0;
                    if (arm)
                    {
                        bool pending = packed ? rig.Packed!.EnableInterrupts() : rig.Split!.EnableInterrupts();
                        driverSleeping = !pending;
                    }
                    else if (packed)
                    {
                        rig.Packed!.DisableInterrupts();
                    }
                    else
                    {
                        rig.Split!.DisableInterrupts();
                    }

                    break;
                }
            }
        }

        Assert.True(kicksSent > 0);
        Assert.True(interruptsSent > 0);
        if (!packed)
        {
            // The free-running 16-bit indices went past 65535 and wrapped.
            Assert.True(completed > ushort.MaxValue);
            Assert.Equal(unchecked((ushort)completed), rig.Split!.LastUsedIndex);
        }
    }

    private sealed class Expected(int area, VirtqBuffer[] buffers, byte[][] contents)
    {
        public int Area { get; } = area;

        public VirtqBuffer[] Buffers { get; } = buffers;

        public byte[][] Contents { get; } = contents;

        public uint Written { get; set; }
    }
}
