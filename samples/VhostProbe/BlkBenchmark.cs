using System.Diagnostics;
using VhostProbe.Devices;
using Vhost.Vmm;
using VhostUserBackend.Devices.Blk;

namespace VhostProbe;

/// <summary>
/// The <c>blk</c> subcommand's workload: keeps <c>queue-depth</c> requests in flight for a
/// while (write, read, or verify = write then read back and compare each block) over a range
/// of the disk, random or sequential, and reports IOPS, MB/s and latency percentiles.
/// </summary>
public static class BlkBenchmark
{
    /// <summary>The workload's result.</summary>
    /// <param name="Requests">Completed requests.</param>
    /// <param name="Bytes">Data bytes moved.</param>
    /// <param name="Elapsed">Wall time.</param>
    /// <param name="Errors">Requests that completed with a status other than OK.</param>
    /// <param name="Mismatches">Verify reads that differed from what was written.</param>
    /// <param name="P50">Median latency.</param>
    /// <param name="P99">99th percentile latency.</param>
    /// <param name="P999">99.9th percentile latency.</param>
    public readonly record struct Result(long Requests, long Bytes, TimeSpan Elapsed, long Errors, long Mismatches, TimeSpan P50, TimeSpan P99, TimeSpan P999)
    {
        /// <summary>Requests per second.</summary>
        public double Iops => Requests / Elapsed.TotalSeconds;

        /// <summary>Megabytes (10^6) per second.</summary>
        public double MegabytesPerSecond => Bytes / Elapsed.TotalSeconds / 1e6;
    }

    /// <summary>Runs the workload.</summary>
    /// <param name="device">A started virtio-blk device.</param>
    /// <param name="capacitySectors">The disk's capacity.</param>
    /// <param name="operation">read, write or verify.</param>
    /// <param name="random">Random offsets (else sequential, wrapping).</param>
    /// <param name="blockSize">Bytes per request (a multiple of 512).</param>
    /// <param name="queueDepth">Requests in flight.</param>
    /// <param name="duration">How long.</param>
    /// <param name="queues">Request queues driven, each with <paramref name="queueDepth"/> requests in flight, from this one thread.</param>
    /// <returns>The result.</returns>
    public static Result Run(VmmDevice device, ulong capacitySectors, string operation, bool random, int blockSize, int queueDepth, TimeSpan duration, int queues = 1)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (blockSize <= 0 || blockSize % VirtioBlkClient.SectorSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "a positive multiple of 512");
        }

        bool verify = operation == "verify";
        bool write = operation == "write";
        ulong blocks = capacitySectors * VirtioBlkClient.SectorSize / (ulong)blockSize;
        if (blocks < (ulong)queueDepth)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, $"the disk holds {blocks} blocks, fewer than the queue depth");
        }

        int perQueue = queueDepth;
        queueDepth *= queues; // slots: queue q owns [q·perQueue, (q+1)·perQueue)
        var clients = new VirtioBlkClient[queues];
        for (int q = 0; q < queues; q++)
        {
            clients[q] = new VirtioBlkClient(device, perQueue, blockSize, q);
        }

        int nextQueue = 0;
        VirtioBlkStatus CompleteAny(out int slot)
        {
            if (queues == 1)
            {
                return clients[0].Complete(TimeSpan.FromSeconds(10), out slot);
            }

            // Several queues from one thread: poll them round robin (this thread has its own CPU).
            long deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
            while (true)
            {
                for (int i = 0; i < queues; i++)
                {
                    int q = (nextQueue + i) % queues;
                    if (clients[q].TryComplete(out int s, out VirtioBlkStatus st))
                    {
                        nextQueue = q + 1;
                        slot = (q * perQueue) + s;
                        return st;
                    }
                }

                if (Stopwatch.GetTimestamp() > deadline)
                {
                    throw new TimeoutException("no completion on any queue within 10 s");
                }
            }
        }
        var rng = new Random(12345);
        ulong nextSeq = 0;

        // Verify: each slot writes a block then reads it back; slots use disjoint blocks (slot + k·depth).
        var slotBlock = new ulong[queueDepth];
        var slotPhase = new bool[queueDepth];
        var slotStart = new long[queueDepth];
        var latencies = new List<long>(1 << 16);
        long requests = 0, bytes = 0, errors = 0, mismatches = 0;
        byte[] expect = new byte[blockSize];

        ulong PickBlock(int slot)
        {
            ulong b = random ? (ulong)rng.NextInt64((long)blocks) : nextSeq++ % blocks;
            if (!verify)
            {
                return b;
            }

            ulong own = b - (b % (ulong)queueDepth) + (ulong)slot;
            return own < blocks ? own : (ulong)slot;
        }

        void Fill(Span<byte> span, ulong block)
        {
            span.Fill((byte)(block * 31));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(span, block);
        }

        void Start(int slot)
        {
            ulong sector = slotBlock[slot] * (ulong)blockSize / VirtioBlkClient.SectorSize;
            bool isWrite = verify ? !slotPhase[slot] : write;
            if (isWrite)
            {
                Fill(clients[slot / perQueue].DataOf(slot % perQueue, blockSize), slotBlock[slot]);
            }

            slotStart[slot] = Stopwatch.GetTimestamp();
            clients[slot / perQueue].Submit(slot % perQueue, isWrite ? VirtioBlkRequestType.Out : VirtioBlkRequestType.In, sector, blockSize);
        }

        var wall = Stopwatch.StartNew();
        for (int s = 0; s < queueDepth; s++)
        {
            slotBlock[s] = PickBlock(s);
            Start(s);
        }

        int inFlight = queueDepth;
        while (inFlight > 0)
        {
            VirtioBlkStatus status = CompleteAny(out int slot);
            latencies.Add(Stopwatch.GetTimestamp() - slotStart[slot]);
            requests++;
            bytes += blockSize;
            if (status != VirtioBlkStatus.Ok)
            {
                errors++;
            }
            else if (verify && slotPhase[slot])
            {
                Fill(expect, slotBlock[slot]);
                if (!clients[slot / perQueue].DataOf(slot % perQueue, blockSize).SequenceEqual(expect))
                {
                    mismatches++;
                }
            }

            bool running = wall.Elapsed < duration;
            if (verify && !slotPhase[slot])
            {
                slotPhase[slot] = true;
                Start(slot);
                continue;
            }

            if (running)
            {
                slotPhase[slot] = false;
                slotBlock[slot] = PickBlock(slot);
                Start(slot);
            }
            else
            {
                inFlight--;
            }
        }

        TimeSpan elapsed = wall.Elapsed;
        latencies.Sort();
        TimeSpan P(double q) => latencies.Count == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(0, latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))]);
        return new Result(requests, bytes, elapsed, errors, mismatches, P(0.50), P(0.99), P(0.999));
    }
}
