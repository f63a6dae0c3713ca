using System.Diagnostics;
using Vhost.User;
using Vhost.Virtio;
using VhostProbe.Devices;
using Vhost.Vmm;
using VhostUserBackend.Devices.Blk;

namespace Vhost.IntegrationTests.Peers;

/// <summary>The .NET front-end driving qemu-storage-daemon's vhost-user-blk export with virtio-blk requests.</summary>
[Collection(PeerCollection.Name)]
public sealed class StorageDaemonTests
{
    private const long DiskBytes = 8 << 20;

    private static readonly VmmDeviceOptions Options = new() { QueueSize = 64, MemorySize = 8 << 20 };

    [Fact]
    public void Pattern_written_through_the_request_queue_reads_back_and_lands_in_the_image()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out string disk);
        byte[] pattern = new byte[64 << 10];
        new Random(8).NextBytes(pattern);
        const ulong sector = 2048;
        using (VmmDevice dev = VmmDevice.Connect(qsd.SocketPath, Options))
        {
            Assert.True(dev.EventIdx, "qemu-storage-daemon offers EVENT_IDX");
            var blk = new VirtioBlkClient(dev, 1, pattern.Length);
            Assert.Equal(VirtioBlkStatus.Ok, blk.Write(sector, pattern));
            Assert.Equal(VirtioBlkStatus.Ok, blk.Flush());
            byte[] back = new byte[pattern.Length];
            Assert.Equal(VirtioBlkStatus.Ok, blk.Read(sector, back));
            Assert.Equal(pattern, back);
        }

        // The back-end wrote into the image file: read it with plain file I/O.
        byte[] file = new byte[pattern.Length];
        using (FileStream f = new(disk, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            f.Position = (long)sector * VirtioBlkClient.SectorSize;
            f.ReadExactly(file);
        }

        Assert.Equal(pattern, file);
    }

    [Fact]
    public void Out_of_range_sector_completes_with_IOERR_and_the_queue_keeps_working()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        using VmmDevice dev = VmmDevice.Connect(qsd.SocketPath, Options);
        var blk = new VirtioBlkClient(dev, 1, 4096) { Timeout = TimeSpan.FromSeconds(5) };
        byte[] buf = new byte[4096];
        ulong sectors = DiskBytes / VirtioBlkClient.SectorSize;
        var w = Stopwatch.StartNew();
        Assert.Equal(VirtioBlkStatus.IoError, blk.Read(sectors, buf));
        Assert.Equal(VirtioBlkStatus.IoError, blk.Write(sectors + 1000, buf));
        Assert.True(w.Elapsed < TimeSpan.FromSeconds(2), $"the errors took {w.Elapsed}");
        Assert.Equal(VirtioBlkStatus.Ok, blk.Read(sectors - 8, buf));
    }

    [Fact]
    public void Disconnect_and_reconnect_sees_the_data_of_the_first_connection()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        byte[] pattern = new byte[8192];
        new Random(80).NextBytes(pattern);
        using (VmmDevice first = VmmDevice.Connect(qsd.SocketPath, Options))
        {
            var blk = new VirtioBlkClient(first, 1, pattern.Length);
            Assert.Equal(VirtioBlkStatus.Ok, blk.Write(100, pattern));
            Assert.Equal(VirtioBlkStatus.Ok, blk.Flush());
            uint[] bases = first.Stop();
            Assert.Equal(2u, bases[0]);
        }

        for (int round = 0; round < 3; round++)
        {
            using VmmDevice again = VmmDevice.Connect(qsd.SocketPath, Options);
            var blk = new VirtioBlkClient(again, 1, pattern.Length);
            byte[] back = new byte[pattern.Length];
            Assert.Equal(VirtioBlkStatus.Ok, blk.Read(100, back));
            Assert.Equal(pattern, back);
            Assert.Equal(VirtioBlkStatus.Ok, blk.GetId(out string id));
            Assert.Equal("vhost_user_blk", id); // qemu-storage-daemon's fixed serial
        }

        Assert.False(qsd.HasExited, qsd.Output);
    }

    [Fact]
    public void Queue_depth_32_with_indirect_descriptors_completes_every_request()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        using VmmDevice dev = VmmDevice.Connect(qsd.SocketPath, new VmmDeviceOptions { QueueSize = 32, MemorySize = 8 << 20, MaxIndirectEntries = 4 });
        Assert.Equal(4, dev.Queues[0].MaxIndirectEntries);
        var blk = new VirtioBlkClient(dev, 32, 4096);
        for (int s = 0; s < 32; s++)
        {
            blk.DataOf(s, 4096).Fill((byte)s);
            blk.Submit(s, VirtioBlkRequestType.Out, (ulong)s * 8, 4096);
        }

        var done = new HashSet<int>();
        for (int i = 0; i < 32; i++)
        {
            Assert.Equal(VirtioBlkStatus.Ok, blk.Complete(TimeSpan.FromSeconds(5), out int slot));
            Assert.True(done.Add(slot));
        }

        byte[] back = new byte[4096];
        blk.Read(31 * 8, back);
        Assert.All(back, b => Assert.Equal(31, b));
    }

    [Fact]
    public void Missing_required_feature_or_queues_is_refused_and_an_idle_queue_times_out()
    {
        using PeerProcess qsd = StorageDaemonPeer.Start(DiskBytes, out _);
        NotSupportedException packed = Assert.Throws<NotSupportedException>(() => VmmDevice.Connect(qsd.SocketPath, new VmmDeviceOptions { RequiredFeatures = (ulong)VirtioFeatures.RingPacked }));
        Assert.Contains("0x400000000", packed.Message, StringComparison.Ordinal);
        NotSupportedException queues = Assert.Throws<NotSupportedException>(() => VmmDevice.Connect(qsd.SocketPath, new VmmDeviceOptions { QueueCount = 2 }));
        Assert.Contains("1 queues, 2 requested", queues.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => VmmDevice.Connect(qsd.SocketPath, new VmmDeviceOptions { QueueSize = 100 }));

        using VmmDevice dev = VmmDevice.Connect(qsd.SocketPath, Options);
        var w = Stopwatch.StartNew();
        Assert.Throws<TimeoutException>(() => dev.Queues[0].WaitForCompletion(TimeSpan.FromMilliseconds(100)));
        Assert.InRange(w.ElapsedMilliseconds, 90, 2000);
        var blk = new VirtioBlkClient(dev, 1, 512);
        Assert.Equal(VirtioBlkStatus.Ok, blk.Flush());
    }

    [Fact]
    public void Connecting_to_a_missing_socket_fails_with_SocketConnect()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vhost-absent-{Guid.NewGuid():N}.sock");
        var e = Assert.Throws<VhostUserException>(() => VmmDevice.Connect(path, Options, TimeSpan.FromMilliseconds(100)));
        Assert.NotEqual(0, e.ErrorCode);
    }
}
