using System.Buffers.Binary;
using Vhost.User.Messages;
using VhostProbe.Devices;
using Vhost.Vmm;
using VhostUserBackend.Devices.Blk;
using VhostUserBackend.Virtio;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// The <c>vhost-user-blk</c> sample process driven by the .NET front-end (<see cref="VmmDevice"/>)
/// with hand-made virtio-blk requests: good requests land in the image, bad ones get IOERR or
/// UNSUPP (or length 0 when there is no status byte), and the queue keeps working. No guest: fast.
/// </summary>
public sealed class BlkSampleRequestTests
{
    private const long DiskBytes = 1 << 20;
    private const ulong Sectors = DiskBytes / 512;
    private const ulong Flush = (ulong)VirtioBlkFeatures.Flush;
    private const ulong Discard = (ulong)VirtioBlkFeatures.Discard;
    private const ulong WriteZeroes = (ulong)VirtioBlkFeatures.WriteZeroes;
    private const ulong ReadOnly = (ulong)VirtioBlkFeatures.ReadOnly;

    [Fact]
    public void Reads_writes_flush_and_get_id_reach_the_image()
    {
        using var dir = new TempDirectory("vhost-blkreq-");
        string disk = dir.CreateFile("disk.img", DiskBytes);
        using SampleProcess blk = Start(dir, disk, "--serial", "req-serial");
        using VmmDevice dev = VmmDevice.Connect(Path.Combine(dir.Path, "blk.sock"), new VmmDeviceOptions { QueueSize = 64, MemorySize = 4 << 20, Features = Flush });
        var client = new VirtioBlkClient(dev, 1, 64 << 10);
        byte[] pattern = new byte[64 << 10];
        new Random(7).NextBytes(pattern);
        Assert.Equal(VirtioBlkStatus.Ok, client.Write(100, pattern));
        Assert.Equal(VirtioBlkStatus.Ok, client.Flush());
        byte[] back = new byte[pattern.Length];
        Assert.Equal(VirtioBlkStatus.Ok, client.Read(100, back));
        Assert.Equal(pattern, back);
        Assert.Equal(VirtioBlkStatus.Ok, client.GetId(out string id));
        Assert.Equal("req-serial", id);

        VirtioBlkConfig config = VirtioBlkConfig.Read(dev.GetConfig(VirtioBlkConfig.Size));
        Assert.Equal(Sectors, config.Capacity);
        Assert.Equal(512u, config.BlockSize);
        Assert.Equal(1, config.NumQueues);
        Assert.Equal(1, config.Writeback);

        byte[] file = new byte[pattern.Length];
        using (var f = new FileStream(disk, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            f.Position = 100 * 512;
            f.ReadExactly(file);
        }

        Assert.Equal(pattern, file);
    }

    [Fact]
    public void Bad_requests_get_IOERR_or_UNSUPP_and_the_queue_keeps_working()
    {
        using var dir = new TempDirectory("vhost-blkreq-");
        using SampleProcess blk = Start(dir, dir.CreateFile("disk.img", DiskBytes));
        using VmmDevice dev = VmmDevice.Connect(Path.Combine(dir.Path, "blk.sock"), new VmmDeviceOptions { QueueSize = 64, MemorySize = 4 << 20 });
        var r = new Requests(dev);

        // The used length is every writable byte, as QEMU reports it (in_len), so the ring's dirty
        // logging covers the status byte at the end even when no data was written.
        Assert.Equal((VirtioBlkStatus.IoError, 513u), r.Run(0, Sectors, data: 512, writable: true));           // read past the end
        Assert.Equal((VirtioBlkStatus.IoError, 1025u), r.Run(0, Sectors - 1, data: 1024, writable: true));    // read across the end
        Assert.Equal((VirtioBlkStatus.IoError, 1u), r.Run(1, 0, data: 1000, writable: false));                 // not whole sectors
        Assert.Equal((VirtioBlkStatus.IoError, 1u), r.Run(1, ulong.MaxValue, data: 512, writable: false));     // sector overflow
        Assert.Equal((VirtioBlkStatus.Unsupported, 1u), r.Run(99, 0, data: 0, writable: false));               // unknown type
        Assert.Equal((VirtioBlkStatus.Unsupported, 1u), r.Run(10, 0, data: 0, writable: false));               // GET_LIFETIME
        Assert.Equal((VirtioBlkStatus.Unsupported, 1u), r.Run(11, 0, data: 16, writable: false));              // DISCARD not negotiated
        Assert.Equal((VirtioBlkStatus.IoError, 1u), r.Run(0, 0, data: 0, writable: false, headerBytes: 8));   // short header
        Assert.Equal(0u, r.RunWithoutStatus());                                                                 // nowhere to put a status

        // Still serving, and nothing crashed.
        var client = new VirtioBlkClient(dev, 1, 4096);
        Assert.Equal(VirtioBlkStatus.Ok, client.Read(Sectors - 8, new byte[4096]));
        Assert.False(blk.HasExited, blk.Output);
        Assert.Contains("outside the disk", blk.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_zeroes_and_discard_when_negotiated()
    {
        using var dir = new TempDirectory("vhost-blkreq-");
        using SampleProcess blk = Start(dir, dir.CreateFile("disk.img", DiskBytes));
        using VmmDevice dev = VmmDevice.Connect(Path.Combine(dir.Path, "blk.sock"), new VmmDeviceOptions { QueueSize = 64, MemorySize = 4 << 20, Features = Discard | WriteZeroes });
        Assert.NotEqual(0UL, dev.AckedFeatures & WriteZeroes);
        var client = new VirtioBlkClient(dev, 1, 8192);
        byte[] ones = new byte[8192];
        Array.Fill(ones, (byte)0xa5);
        Assert.Equal(VirtioBlkStatus.Ok, client.Write(64, ones));
        var r = new Requests(dev);

        Assert.Equal((VirtioBlkStatus.Ok, 1u), r.Segment(13, 66, 4, flags: 0));         // WRITE_ZEROES sectors 66..69
        Assert.Equal((VirtioBlkStatus.Ok, 1u), r.Segment(13, 70, 2, flags: 1));         // with UNMAP
        Assert.Equal((VirtioBlkStatus.Ok, 1u), r.Segment(11, 200, 8, flags: 0));        // DISCARD
        Assert.Equal((VirtioBlkStatus.Unsupported, 1u), r.Segment(11, 200, 8, flags: 1)); // DISCARD with UNMAP: reserved
        Assert.Equal((VirtioBlkStatus.IoError, 1u), r.Segment(13, Sectors - 1, 2, flags: 0));

        byte[] back = new byte[8192];
        Assert.Equal(VirtioBlkStatus.Ok, client.Read(64, back));
        Assert.All(back.AsSpan(0, 1024).ToArray(), b => Assert.Equal(0xa5, b));
        Assert.All(back.AsSpan(1024, 3072).ToArray(), b => Assert.Equal(0, b));
        Assert.All(back.AsSpan(4096).ToArray(), b => Assert.Equal(0xa5, b));
    }

    [Fact]
    public void Read_only_disk_refuses_writes_and_offers_RO()
    {
        using var dir = new TempDirectory("vhost-blkreq-");
        using SampleProcess blk = Start(dir, dir.CreateFile("disk.img", DiskBytes), "--read-only");
        using VmmDevice dev = VmmDevice.Connect(Path.Combine(dir.Path, "blk.sock"), new VmmDeviceOptions { QueueSize = 64, MemorySize = 4 << 20, Features = ReadOnly });
        Assert.NotEqual(0UL, dev.OfferedFeatures & ReadOnly);
        Assert.Equal(0UL, dev.OfferedFeatures & (Discard | WriteZeroes));
        var client = new VirtioBlkClient(dev, 1, 4096);
        Assert.Equal(VirtioBlkStatus.IoError, client.Write(0, new byte[4096]));
        Assert.Equal(VirtioBlkStatus.Ok, client.Read(0, new byte[4096]));
    }

    [Fact]
    public void Config_writeback_byte_is_the_only_writable_field()
    {
        using var dir = new TempDirectory("vhost-blkreq-");
        using SampleProcess blk = Start(dir, dir.CreateFile("disk.img", DiskBytes), "--num-queues", "3");
        using VmmDevice dev = VmmDevice.Connect(Path.Combine(dir.Path, "blk.sock"), new VmmDeviceOptions { QueueSize = 64, MemorySize = 4 << 20 });
        Assert.Equal(3, dev.BackendQueueCount);
        Assert.Equal(3, VirtioBlkConfig.Read(dev.GetConfig(VirtioBlkConfig.Size)).NumQueues);
        dev.Frontend.SetConfig(32, VhostUserConfigFlags.Writable, [0]);
        Assert.Equal(0, VirtioBlkConfig.Read(dev.GetConfig(VirtioBlkConfig.Size)).Writeback);
        Assert.ThrowsAny<Vhost.User.VhostUserException>(() => dev.Frontend.SetConfig(0, VhostUserConfigFlags.Writable, [1, 2, 3, 4, 5, 6, 7, 8]));
        Assert.Equal(Sectors, VirtioBlkConfig.Read(dev.GetConfig(VirtioBlkConfig.Size)).Capacity);
    }

    private static SampleProcess Start(TempDirectory dir, string disk, params string[] extra)
        => SampleProcess.Start("vhost-user-blk", ["--socket-path", Path.Combine(dir.Path, "blk.sock"), "--blk-file", disk, .. extra]);

    [Theory]
    [InlineData("uring")]
    [InlineData("threads")]
    public void Many_requests_in_flight_with_O_DIRECT_aligned_and_misaligned_buffers_complete_in_any_order(string io)
    {
        // 32 writes, then 32 reads, all in flight at once; every other data buffer is 8 bytes off a
        // sector boundary (bounced under O_DIRECT). Then the image shrinks under the daemon: a read
        // past the new end is IOERR and the queue keeps working.
        const int Depth = 32;
        using var dir = new TempDirectory("vhost-blkreq-");
        string disk = dir.CreateFile("disk.img", DiskBytes);
        using SampleProcess blk = Start(dir, disk, "--direct", "--io", io);
        using VmmDevice dev = VmmDevice.Connect(Path.Combine(dir.Path, "blk.sock"), new VmmDeviceOptions { QueueSize = 128, MemorySize = 8 << 20, Features = Flush });
        VmmQueue q = dev.Queues[0];
        var headers = new ulong[Depth];
        var data = new ulong[Depth];
        var status = new ulong[Depth];
        for (int i = 0; i < Depth; i++)
        {
            headers[i] = dev.Ram.Allocate(16, 16);
            data[i] = dev.Ram.Allocate(4096 + 4096, 4096) + (i % 2 == 0 ? 0UL : 8UL);
            status[i] = dev.Ram.Allocate(1, 1);
        }

        void RunAll(uint type, bool fill)
        {
            var heads = new Dictionary<ushort, int>();
            for (int i = 0; i < Depth; i++)
            {
                Span<byte> h = dev.Ram.GetSpan(headers[i], 16);
                BinaryPrimitives.WriteUInt32LittleEndian(h, type);
                BinaryPrimitives.WriteUInt32LittleEndian(h[4..], 0);
                BinaryPrimitives.WriteUInt64LittleEndian(h[8..], (ulong)(i * 8));
                dev.Ram.GetSpan(data[i], 4096).Fill(fill ? (byte)(i + 1) : (byte)0);
                dev.Ram.GetSpan(status[i], 1)[0] = 0xff;
                heads[q.Submit([new VirtqBuffer(headers[i], 16, false), new VirtqBuffer(data[i], 4096, !fill), new VirtqBuffer(status[i], 1, true)])] = i;
            }

            for (int n = 0; n < Depth; n++)
            {
                VmmCompletion c = q.WaitForCompletion(TimeSpan.FromSeconds(10));
                int i = heads[c.Head];
                Assert.Equal((byte)VirtioBlkStatus.Ok, dev.Ram.GetSpan(status[i], 1)[0]);
                Assert.Equal(fill ? 1u : 4097u, c.Length);
            }
        }

        RunAll(1, fill: true);
        RunAll(0, fill: false);
        byte[] file = File.ReadAllBytes(disk);
        for (int i = 0; i < Depth; i++)
        {
            Assert.All(dev.Ram.GetSpan(data[i], 4096).ToArray(), b => Assert.Equal((byte)(i + 1), b));
            Assert.All(file.AsSpan(i * 4096, 4096).ToArray(), b => Assert.Equal((byte)(i + 1), b));
        }

        using (var f = new FileStream(disk, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            f.SetLength(DiskBytes / 2);
        }

        var r = new Requests(dev);
        Assert.Equal((VirtioBlkStatus.IoError, 513u), r.Run(0, Sectors - 1, data: 512, writable: true));
        Assert.Equal((VirtioBlkStatus.Ok, 513u), r.Run(0, 0, data: 512, writable: true));
        Assert.False(blk.HasExited, blk.Output);
        // The console logger writes asynchronously.
        Assert.True(SpinWait.SpinUntil(() => blk.Output.Contains("end of file", StringComparison.Ordinal), 5000), blk.Output); // the image shrank
        Assert.Contains(io == "uring" ? "io_uring" : "I/O threads", blk.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Long_in_memory_requests_are_signalled_as_each_completes_not_at_the_end_of_the_batch()
    {
        // The temporary disk lives in memory, so the sample copies each request inline on its
        // worker. Four 4 MiB writes are published together, with one kick, so the worker takes
        // them in one batch. The driver must be told of each as it completes (it refills its queue
        // while the worker copies the next), not once after the whole batch: the call eventfd,
        // read only after all four completed, holds one signal per request, not one. (Without
        // EVENT_IDX: with it, this driver, which never moves used_event, asks for one interrupt.)
        const int Count = 4;
        const uint Bytes = 4 << 20;
        using var dir = new TempDirectory("vhost-blkreq-");
        string socket = Path.Combine(dir.Path, "blk.sock");
        using SampleProcess blk = SampleProcess.Start("vhost-user-blk", ["--socket-path", socket, "--size", "32M"]);
        using VmmDevice dev = VmmDevice.Connect(socket, new VmmDeviceOptions { QueueSize = 64, MemorySize = 24 << 20, EventIdx = false });
        VmmQueue q = dev.Queues[0];
        var status = new ulong[Count];
        for (int i = 0; i < Count; i++)
        {
            ulong header = dev.Ram.Allocate(16, 16);
            Span<byte> h = dev.Ram.GetSpan(header, 16);
            BinaryPrimitives.WriteUInt32LittleEndian(h, 1);                       // OUT
            BinaryPrimitives.WriteUInt64LittleEndian(h[8..], (ulong)i * (Bytes / 512));
            ulong data = dev.Ram.Allocate(Bytes, 4096);
            dev.Ram.GetSpan(data, (int)Bytes).Fill((byte)(i + 1));
            status[i] = dev.Ram.Allocate(1, 1);
            dev.Ram.GetSpan(status[i], 1)[0] = 0xff;
            q.Driver.AddBuffers([new VirtqBuffer(header, 16, false), new VirtqBuffer(data, Bytes, false), new VirtqBuffer(status[i], 1, true)]);
        }

        q.Call.TryRead(out _);
        q.Driver.Publish();
        q.Kick.Signal();
        Assert.True(SpinWait.SpinUntil(() => q.Driver.DeviceUsedIndex == Count, 10_000), $"used {q.Driver.DeviceUsedIndex} of {Count}");
        Assert.True(q.Call.TryRead(out ulong signals));
        Assert.True(signals >= Count, $"the driver was signalled {signals} times for {Count} long requests taken in one batch");
        for (int i = 0; i < Count; i++)
        {
            Assert.Equal((byte)VirtioBlkStatus.Ok, dev.Ram.GetSpan(status[i], 1)[0]);
        }

        Assert.False(blk.HasExited, blk.Output);
    }

    /// <summary>Hand-made requests on queue 0: header, optional data, status (each its own descriptor).</summary>
    private sealed class Requests(VmmDevice dev)
    {
        private readonly ulong _header = dev.Ram.Allocate(16, 16);
        private readonly ulong _data = dev.Ram.Allocate(8192, 4096);
        private readonly ulong _status = dev.Ram.Allocate(1, 1);

        public (VirtioBlkStatus Status, uint Length) Run(uint type, ulong sector, int data, bool writable, uint headerBytes = 16)
        {
            WriteHeader(type, sector);
            Span<VirtqBuffer> chain = stackalloc VirtqBuffer[3];
            int n = 0;
            chain[n++] = new VirtqBuffer(_header, headerBytes, false);
            if (data > 0)
            {
                chain[n++] = new VirtqBuffer(_data, (uint)data, writable);
            }

            chain[n++] = new VirtqBuffer(_status, 1, true);
            return Complete(chain[..n]);
        }

        public (VirtioBlkStatus Status, uint Length) Segment(uint type, ulong sector, uint sectors, uint flags)
        {
            WriteHeader(type, 0);
            Span<byte> s = dev.Ram.GetSpan(_data, 16);
            BinaryPrimitives.WriteUInt64LittleEndian(s, sector);
            BinaryPrimitives.WriteUInt32LittleEndian(s[8..], sectors);
            BinaryPrimitives.WriteUInt32LittleEndian(s[12..], flags);
            return Complete([new VirtqBuffer(_header, 16, false), new VirtqBuffer(_data, 16, false), new VirtqBuffer(_status, 1, true)]);
        }

        public uint RunWithoutStatus()
        {
            WriteHeader(0, 0);
            dev.Queues[0].Submit([new VirtqBuffer(_header, 16, false)]);
            return dev.Queues[0].WaitForCompletion(TimeSpan.FromSeconds(5)).Length;
        }

        private void WriteHeader(uint type, ulong sector)
        {
            Span<byte> h = dev.Ram.GetSpan(_header, 16);
            BinaryPrimitives.WriteUInt32LittleEndian(h, type);
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], 0);
            BinaryPrimitives.WriteUInt64LittleEndian(h[8..], sector);
            dev.Ram.GetSpan(_status, 1)[0] = 0xff;
        }

        private (VirtioBlkStatus, uint) Complete(ReadOnlySpan<VirtqBuffer> chain)
        {
            dev.Queues[0].Submit(chain);
            VmmCompletion c = dev.Queues[0].WaitForCompletion(TimeSpan.FromSeconds(5));
            return ((VirtioBlkStatus)dev.Ram.GetSpan(_status, 1)[0], c.Length);
        }
    }
}
