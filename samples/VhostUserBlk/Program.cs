using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Vhost;
using VhostSamples;
using VhostUserBackend;

namespace VhostUserBlk;

/// <summary>
/// vhost-user-blk: serves a raw image (or a temporary sparse disk) to QEMU as a virtio-blk device.
/// Exit codes: 0 stopped cleanly (SIGTERM/SIGINT, or the <c>--fd</c> front-end left), 1 failure,
/// 2 bad usage.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var socket = new Option<string?>("--socket-path") { Description = "Listen on this Unix socket (default: $XDG_RUNTIME_DIR/vhost-user-blk.sock, else /tmp/vhost-user-blk-USER.sock)" };
        var fd = new Option<int?>("--fd") { Description = "Serve the vhost-user socket on this file descriptor: a connected one (one front-end) or a listening one (front-ends one after another). Without --socket-path, --connect or --fd, a socket passed by systemd (LISTEN_FDS) is served" };
        var connect = new Option<string?>("--connect") { Description = "Client mode: connect to a front-end listening on this Unix socket (QEMU -chardev socket,server=on,wait=off), and again whenever it goes away" };
        var file = new Option<string?>("--blk-file") { Description = "Raw image file or block device to serve (default: a temporary sparse in-memory disk of --size)" };
        var readOnly = new Option<bool>("--read-only") { Description = "Refuse writes (VIRTIO_BLK_F_RO)" };
        var queues = new Option<int>("--num-queues") { Description = "Request queues (1 to 64)", DefaultValueFactory = _ => 1 };
        var direct = new Option<bool>("--direct") { Description = "Bypass the host page cache (O_DIRECT) for aligned requests" };
        var noLock = new Option<bool>("--no-lock") { Description = "Do not take QEMU-compatible locks on --blk-file (by default a second writer, QEMU or qemu-img included, is refused)" };
        var incoming = new Option<bool>("--incoming") { Description = "Start as the destination of a live migration: hold --blk-file shared and inactive (the source keeps writing it) and take write access when the rings start (QEMU's -incoming)" };
        var size = new Option<string>("--size") { Description = "Size of the temporary disk (bytes, or with K/M/G suffix)", DefaultValueFactory = _ => "64M" };
        var serial = new Option<string>("--serial") { Description = "Device serial returned by GET_ID (up to 20 ASCII characters)", DefaultValueFactory = _ => "dotnet-vhost-blk" };
        var poll = new Option<int>("--poll") { Description = "Polling window in microseconds after each event (0: off)", DefaultValueFactory = _ => 0 };
        var io = new Option<BlkIoMode>("--io") { Description = "I/O engine: uring (io_uring, many requests in flight per queue; falls back to threads where the kernel refuses it) or threads (synchronous preadv/pwritev on I/O threads)", DefaultValueFactory = _ => BlkIoMode.Uring };
        var latency = new Option<int>("--latency") { Description = "Simulate a slow disk, in milliseconds (tests, demonstrations): every I/O operation waits a random 0 to N ms before it starts and again after it completes, so requests stay in flight and complete out of order (0: off)", DefaultValueFactory = _ => 0 };
        var postcopy = new Option<bool>("--postcopy") { Description = "Offer postcopy live migration (PAGEFAULT; QEMU's postcopy-ram capability) instead of more than 8 memory slots; needs a userfaultfd that handles kernel faults (root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)" };
        var printCapabilities = new Option<bool>("--print-capabilities") { Description = "Print the back-end's capabilities as JSON and exit" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log protocol details (debug level)" };

        var root = new RootCommand("Serve a disk to QEMU over vhost-user (virtio-blk). Without arguments: a 64 MiB temporary disk on a default socket; the QEMU command line to attach it is printed.")
        {
            socket, connect, fd, file, readOnly, queues, direct, noLock, incoming, size, serial, poll, io, latency, postcopy, printCapabilities, verbose,
        };
        root.SetAction(r =>
        {
            if (r.GetValue(printCapabilities))
            {
                SampleHost.PrintCapabilities("block", "read-only", "blk-file");
                return 0;
            }

            string? error = SampleEndpoint.TryCreate(r.GetValue(socket), r.GetValue(connect), r.GetValue(fd), () => SampleHost.DefaultSocketPath("vhost-user-blk"), out SampleEndpoint? endpoint);
            int queueCount = r.GetValue(queues);
            if (error is null && queueCount is < 1 or > 64)
            {
                error = $"--num-queues {queueCount}: 1 to 64";
            }

            int pollMicroseconds = r.GetValue(poll);
            if (error is null && pollMicroseconds is < 0 or > 1_000_000)
            {
                error = $"--poll {pollMicroseconds}: 0 to 1000000 microseconds";
            }

            int latencyMs = r.GetValue(latency);
            if (error is null && latencyMs is < 0 or > 10_000)
            {
                error = $"--latency {latencyMs}: 0 to 10000 milliseconds";
            }

            long diskSize = 0;
            if (error is null && r.GetValue(file) is null && !TryParseSize(r.GetValue(size)!, out diskSize))
            {
                error = $"--size {r.GetValue(size)}: a size of at least 512 bytes, like 67108864, 64M or 1G";
            }

            if (error is null && r.GetValue(file) is null && r.GetValue(direct))
            {
                error = "--direct needs --blk-file (the temporary disk lives in memory)";
            }

            if (error is null && r.GetValue(file) is null && r.GetValue(noLock))
            {
                error = "--no-lock needs --blk-file (the temporary disk is private to this process)";
            }

            if (error is null && r.GetValue(incoming) && (r.GetValue(file) is null || r.GetValue(noLock)))
            {
                error = "--incoming needs --blk-file with locking on (it hands a locked image over)";
            }

            if (error is not null)
            {
                Console.Error.WriteLine("vhost-user-blk: " + error);
                endpoint?.Dispose();
                return 2;
            }

            using SampleEndpoint at = endpoint!;
            string? socketPath = at.ListenPath;
            using ILoggerFactory logging = SampleHost.CreateLoggerFactory(r.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information);
            ILogger logger = logging.CreateLogger("vhost-user-blk");
            try
            {
                string? path = r.GetValue(file);
                BlkImage image = path is null
                    ? BlkImage.CreateTemporary(diskSize, r.GetValue(readOnly))
                    : BlkImage.OpenFile(path, r.GetValue(readOnly), r.GetValue(direct), lockImage: !r.GetValue(noLock), incoming: r.GetValue(incoming));
                using var device = new VirtioBlkDevice(image, queueCount, Math.Min(queueCount, Environment.ProcessorCount), r.GetValue(serial)!, logger, r.GetValue(io), latency: TimeSpan.FromMilliseconds(latencyMs))
                {
                    PollingTime = TimeSpan.FromMicroseconds(pollMicroseconds),
                };
                using var daemon = new VhostUserDaemon(device, new VhostUserDaemonOptions { Postcopy = r.GetValue(postcopy) }, logging);

                // SIGHUP: the image grew (truncate -s, lvextend; qemu-img resize is refused by the image lock): take the new capacity and tell the guest.
                using PosixSignalRegistration hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
                {
                    context.Cancel = true;
                    device.RefreshCapacity();
                });
                return SampleHost.Serve(daemon, at, logger, () =>
                {
                    logger.LogInformation("serving {Disk}, {Queues} queue(s), I/O: {Io}", image.Description, queueCount, device.IoMode);
                    if (socketPath is not null)
                    {
                        PrintAttachHelp(socketPath, queueCount, image);
                    }
                });
            }
            catch (Exception e) when (e is VhostException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                Console.Error.WriteLine("vhost-user-blk: " + e.Message);
                return 1;
            }
        });
        return root.Parse(args).Invoke();
    }

    private static void PrintAttachHelp(string socketPath, int queues, BlkImage image)
    {
        string q = queues.ToString(CultureInfo.InvariantCulture);
        SampleHost.PrintAttachHelp(socketPath, "vblk0", "vhost-user-blk-pci", ",num-queues=" + q, detail: $"disk: {image.Description}");
        Console.WriteLine("grew the image (truncate -s)? send SIGHUP and the guest sees the new size");
    }

    private static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        long unit = char.ToUpperInvariant(text[^1]) switch
        {
            'K' => 1L << 10,
            'M' => 1L << 20,
            'G' => 1L << 30,
            'T' => 1L << 40,
            _ => 1,
        };
        string digits = unit == 1 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit)
        {
            return false;
        }

        bytes = n * unit;
        return bytes >= BlkImage.SectorSize;
    }
}
