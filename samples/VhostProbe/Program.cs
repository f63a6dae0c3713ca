using System.CommandLine;
using System.Globalization;
using Vhost.User;
using VhostProbe.Devices;
using Vhost.Vmm;
using VhostUserBackend.Devices.Blk;

namespace VhostProbe;

/// <summary>
/// vhost-probe: connects to a vhost-user back-end and prints what it offers, or drives I/O
/// through it (blk, net, fs). Exit codes: 0 success, 1 failure (the back-end misbehaved or I/O
/// failed), 2 bad usage.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var socket = new Option<string>("--socket-path", "-s") { Description = "The back-end's vhost-user socket", Required = true, Recursive = true };
        var json = new Option<bool>("--json") { Description = "Print JSON", Recursive = true };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the socket", DefaultValueFactory = _ => 5, Recursive = true };
        var replyTimeout = new Option<double>("--reply-timeout") { Description = "Seconds to wait for each reply", DefaultValueFactory = _ => 5 };
        var device = new Option<string?>("--device") { Description = "Device type for decoding (default: inferred from the features)" };
        device.AcceptOnlyFromAmong("blk", "net", "fs");

        var root = new RootCommand("Probe a vhost-user back-end: features, protocol features, queues, memory slots, config space; or drive I/O through it.");
        root.Options.Add(socket);
        root.Options.Add(json);
        root.Options.Add(timeout);
        root.Options.Add(device);
        root.Options.Add(replyTimeout);
        root.SetAction(r => Guard(() =>
        {
            DeviceKind? kind = r.GetValue(device) switch
            {
                "blk" => DeviceKind.Blk,
                "net" => DeviceKind.Net,
                "fs" => DeviceKind.Fs,
                _ => null,
            };
            ProbeReport report = ProbeReport.Probe(r.GetValue(socket)!, kind, TimeSpan.FromSeconds(r.GetValue(timeout)), TimeSpan.FromSeconds(r.GetValue(replyTimeout)));
            if (r.GetValue(json))
            {
                using Stream o = Console.OpenStandardOutput();
                report.WriteJson(o);
            }
            else
            {
                report.WriteText(Console.Out);
            }

            return 0;
        }));

        root.Subcommands.Add(BlkCommand(socket, json, timeout));
        root.Subcommands.Add(NetCommand(socket, json, timeout));
        root.Subcommands.Add(FsCommand(socket, json, timeout));
        return root.Parse(args).Invoke();
    }

    /// <summary>
    /// VIRTIO_BLK_F_FLUSH, acked as the Linux driver acks it: the device may cache writes until a
    /// FLUSH. Without it a device must write through (a sync per write), which qemu-storage-daemon
    /// does not do, so the comparison would not be the same work.
    /// </summary>
    private const ulong VirtioBlkFlushFeature = (ulong)VirtioBlkFeatures.Flush;

    private static Command BlkCommand(Option<string> socket, Option<bool> json, Option<double> timeout)
    {
        var op = new Option<string>("--op") { Description = "read, write or verify (write then read back and compare)", DefaultValueFactory = _ => "verify" };
        op.AcceptOnlyFromAmong("read", "write", "verify");
        var pattern = new Option<string>("--pattern") { Description = "random or sequential", DefaultValueFactory = _ => "random" };
        pattern.AcceptOnlyFromAmong("random", "sequential");
        var blockSize = new Option<int>("--block-size") { Description = "Bytes per request (multiple of 512)", DefaultValueFactory = _ => 4096 };
        var depth = new Option<int>("--queue-depth") { Description = "Requests in flight (up to the queue size)", DefaultValueFactory = _ => 1 };
        var queueSize = new Option<int>("--queue-size") { Description = "Virtqueue size", DefaultValueFactory = _ => 128 };
        var seconds = new Option<double>("--seconds") { Description = "Duration", DefaultValueFactory = _ => 5 };
        var queues = new Option<int>("--queues") { Description = "Request queues, each with --queue-depth requests in flight", DefaultValueFactory = _ => 1 };
        var cmd = new Command("blk", "Write/read/verify through a vhost-user-blk back-end; reports IOPS, MB/s and latency percentiles.");
        cmd.Options.Add(op);
        cmd.Options.Add(pattern);
        cmd.Options.Add(blockSize);
        cmd.Options.Add(depth);
        cmd.Options.Add(queueSize);
        cmd.Options.Add(seconds);
        cmd.Options.Add(queues);
        cmd.SetAction(r => Guard(() =>
        {
            int nq = r.GetValue(queues);
            if (nq is < 1 or > 64)
            {
                return Usage($"--queues {nq}: 1 to 64");
            }

            int qs = r.GetValue(queueSize);
            int qd = r.GetValue(depth);
            int bs = r.GetValue(blockSize);
            if (qs is < 1 or > 32768 || (qs & (qs - 1)) != 0)
            {
                return Usage($"--queue-size {qs}: a power of two up to 32768");
            }

            if (qd < 1 || qd > qs)
            {
                return Usage($"--queue-depth {qd}: 1 to the queue size {qs}");
            }

            if (bs <= 0 || bs % 512 != 0 || bs > 4 << 20)
            {
                return Usage($"--block-size {bs}: a multiple of 512 up to 4 MiB");
            }

            ulong ram = ((ulong)nq * ((ulong)qd * (ulong)(bs + 4096) + (ulong)qs * 64)) + (8 << 20);
            using VmmDevice dev = VmmDevice.Connect(r.GetValue(socket)!, new VmmDeviceOptions { QueueSize = (ushort)qs, MemorySize = ram, MaxIndirectEntries = 4, QueueCount = nq, Features = VirtioBlkFlushFeature }, TimeSpan.FromSeconds(r.GetValue(timeout)));
            if (dev.Queues[0].MaxIndirectEntries == 0 && qd * 3 > qs)
            {
                return Usage($"--queue-depth {qd}: without indirect descriptors a request takes 3 of the {qs} descriptors");
            }

            if ((dev.AckedProtocolFeatures & Vhost.User.Messages.VhostUserProtocolFeatures.Config) == 0)
            {
                Console.Error.WriteLine("vhost-probe: the back-end offers no CONFIG: capacity unknown");
                return 1;
            }

            ulong capacity = VirtioBlkConfig.Read(dev.GetConfig(VirtioBlkClient.ConfigBytes)).Capacity;
            BlkBenchmark.Result res = BlkBenchmark.Run(dev, capacity, r.GetValue(op)!, r.GetValue(pattern) == "random", bs, qd, TimeSpan.FromSeconds(r.GetValue(seconds)), nq);
            if (r.GetValue(json))
            {
                using Stream o = Console.OpenStandardOutput();
                using var j = new System.Text.Json.Utf8JsonWriter(o, new System.Text.Json.JsonWriterOptions { Indented = true });
                j.WriteStartObject();
                j.WriteString("op", r.GetValue(op));
                j.WriteString("pattern", r.GetValue(pattern));
                j.WriteNumber("block_size", bs);
                j.WriteNumber("queue_depth", qd);
                j.WriteNumber("queues", nq);
                j.WriteBoolean("indirect", dev.Queues[0].MaxIndirectEntries > 0);
                j.WriteBoolean("event_idx", dev.EventIdx);
                j.WriteNumber("requests", res.Requests);
                j.WriteNumber("errors", res.Errors);
                j.WriteNumber("mismatches", res.Mismatches);
                j.WriteNumber("seconds", res.Elapsed.TotalSeconds);
                j.WriteNumber("iops", Math.Round(res.Iops, 1));
                j.WriteNumber("mb_per_s", Math.Round(res.MegabytesPerSecond, 2));
                j.WriteNumber("latency_p50_us", Math.Round(res.P50.TotalMicroseconds, 1));
                j.WriteNumber("latency_p99_us", Math.Round(res.P99.TotalMicroseconds, 1));
                j.WriteNumber("latency_p999_us", Math.Round(res.P999.TotalMicroseconds, 1));
                j.WriteEndObject();
                j.Flush();
                o.WriteByte((byte)'\n');
            }
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"blk {r.GetValue(op)} {r.GetValue(pattern)} bs={bs} qd={qd} indirect={dev.Queues[0].MaxIndirectEntries > 0} event_idx={dev.EventIdx}: {res.Requests} requests in {res.Elapsed.TotalSeconds:F2} s, {res.Iops:F0} IOPS, {res.MegabytesPerSecond:F1} MB/s, latency p50 {res.P50.TotalMicroseconds:F0} us p99 {res.P99.TotalMicroseconds:F0} us p99.9 {res.P999.TotalMicroseconds:F0} us, errors {res.Errors}, mismatches {res.Mismatches}"));
            }

            return res.Errors == 0 && res.Mismatches == 0 ? 0 : 1;
        }));
        return cmd;
    }

    private static Command NetCommand(Option<string> socket, Option<bool> json, Option<double> timeout)
    {
        var count = new Option<int>("--count") { Description = "Frames to send", DefaultValueFactory = _ => 100 };
        var size = new Option<int>("--frame-size") { Description = "Frame bytes (60 to 1514)", DefaultValueFactory = _ => 64 };
        var window = new Option<int>("--window") { Description = "Frames in flight at most", DefaultValueFactory = _ => 32 };
        var wait = new Option<double>("--wait") { Description = "Seconds to wait for frames to come back", DefaultValueFactory = _ => 2 };
        var cmd = new Command("net", "Send frames on TX and count what comes back on RX (a back-end that forwards or echoes).");
        cmd.Options.Add(count);
        cmd.Options.Add(size);
        cmd.Options.Add(wait);
        cmd.Options.Add(window);
        cmd.SetAction(r => Guard(() =>
        {
            int n = r.GetValue(count);
            int fs = r.GetValue(size);
            if (fs is < 60 or > VirtioNetClient.MaxFrame)
            {
                return Usage($"--frame-size {fs}: 60 to {VirtioNetClient.MaxFrame}");
            }

            using VmmDevice dev = VmmDevice.Connect(r.GetValue(socket)!, new VmmDeviceOptions { QueueCount = 2, QueueSize = 256 }, TimeSpan.FromSeconds(r.GetValue(timeout)));
            int win = r.GetValue(window);
            if (win < 1 || win > 128)
            {
                return Usage($"--window {win}: 1 to 128 (half the RX ring)");
            }

            var watch = System.Diagnostics.Stopwatch.StartNew();
            NetResult res = Net.Exchange(dev, n, fs, TimeSpan.FromSeconds(r.GetValue(wait)), win);
            double secs = watch.Elapsed.TotalSeconds;
            if (r.GetValue(json))
            {
                using Stream o = Console.OpenStandardOutput();
                using var j = new System.Text.Json.Utf8JsonWriter(o, new System.Text.Json.JsonWriterOptions { Indented = true });
                j.WriteStartObject();
                j.WriteNumber("sent", res.Sent);
                j.WriteNumber("received", res.Received);
                j.WriteNumber("matching", res.Matching);
                j.WriteNumber("mac_swapped", res.MacSwapped);
                j.WriteNumber("seconds", secs);
                j.WriteEndObject();
                j.Flush();
                o.WriteByte((byte)'\n');
            }
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"net: sent {res.Sent}, received {res.Received}, matching payload {res.Matching} (MACs swapped {res.MacSwapped}) in {secs:F2} s"));
            }

            return res.Received > 0 ? 0 : 1;
        }));
        return cmd;
    }

    private static Command FsCommand(Option<string> socket, Option<bool> json, Option<double> timeout)
    {
        var path = new Option<string?>("--lookup") { Description = "Also LOOKUP this name in the root and print its attributes" };
        var cmd = new Command("fs", "FUSE_INIT and GETATTR of the root through a virtio-fs back-end.");
        cmd.Options.Add(path);
        cmd.SetAction(r => Guard(() =>
        {
            using VmmDevice dev = VmmDevice.Connect(r.GetValue(socket)!, new VmmDeviceOptions { QueueCount = 2, QueueSize = 64 }, TimeSpan.FromSeconds(r.GetValue(timeout)));
            var fs = new VirtioFsClient(dev);
            fs.Init(out uint major, out uint minor, out uint maxWrite);
            FuseAttr root = fs.GetAttr(VirtioFsClient.RootNodeId);
            FuseAttr? entry = null;
            if (r.GetValue(path) is { } name)
            {
                entry = fs.Lookup(VirtioFsClient.RootNodeId, name, out _);
            }

            if (r.GetValue(json))
            {
                using Stream o = Console.OpenStandardOutput();
                using var j = new System.Text.Json.Utf8JsonWriter(o, new System.Text.Json.JsonWriterOptions { Indented = true });
                j.WriteStartObject();
                j.WriteString("fuse_version", $"{major}.{minor}");
                j.WriteNumber("max_write", maxWrite);
                WriteAttr(j, "root", root);
                if (entry is { } e)
                {
                    WriteAttr(j, "lookup", e);
                }

                j.WriteEndObject();
                j.Flush();
                o.WriteByte((byte)'\n');
            }
            else
            {
                Console.WriteLine($"fs: FUSE {major}.{minor}, max_write {maxWrite}");
                Console.WriteLine($"root: ino {root.Ino} mode {Convert.ToString(root.Mode, 8)} nlink {root.NLink} uid {root.Uid} gid {root.Gid} size {root.Size}");
                if (entry is { } e)
                {
                    Console.WriteLine($"{r.GetValue(path)}: ino {e.Ino} mode {Convert.ToString(e.Mode, 8)} size {e.Size}");
                }
            }

            return 0;
        }));
        return cmd;
    }

    private static void WriteAttr(System.Text.Json.Utf8JsonWriter j, string name, FuseAttr a)
    {
        j.WriteStartObject(name);
        j.WriteNumber("ino", a.Ino);
        j.WriteNumber("size", a.Size);
        j.WriteString("mode", Convert.ToString(a.Mode, 8));
        j.WriteNumber("nlink", a.NLink);
        j.WriteNumber("uid", a.Uid);
        j.WriteNumber("gid", a.Gid);
        j.WriteEndObject();
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"vhost-probe: {message}");
        return 2;
    }

    private static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is VhostUserException or TimeoutException or NotSupportedException or FuseException or InvalidDataException or InvalidOperationException or ArgumentException)
        {
            Console.Error.WriteLine($"vhost-probe: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }
}
