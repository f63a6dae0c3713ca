using System.CommandLine;
using Microsoft.Extensions.Logging;
using Vhost;
using VhostSamples;
using VhostUserBackend;

namespace VhostUserRng;

/// <summary>
/// vhost-user-rng: serves random bytes from the system's cryptographic RNG to a guest as a
/// virtio-rng device. Exit codes: 0 stopped cleanly, 1 failure, 2 bad usage.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var socket = new Option<string?>("--socket-path") { Description = "Listen on this Unix socket (default: $XDG_RUNTIME_DIR/vhost-user-rng.sock, else /tmp/vhost-user-rng-USER.sock)" };
        var fd = new Option<int?>("--fd") { Description = "Serve the vhost-user socket on this file descriptor: a connected one (one front-end) or a listening one (front-ends one after another). Without --socket-path, --connect or --fd, a socket passed by systemd (LISTEN_FDS) is served" };
        var connect = new Option<string?>("--connect") { Description = "Client mode: connect to a front-end listening on this Unix socket (QEMU -chardev socket,server=on,wait=off), and again whenever it goes away" };
        var rate = new Option<long>("--rate-limit") { Description = "Most random bytes per second (0: unlimited)", DefaultValueFactory = _ => 0 };
        var printCapabilities = new Option<bool>("--print-capabilities") { Description = "Print the back-end's capabilities as JSON and exit" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log protocol details (debug level)" };
        var root = new RootCommand("Serve random bytes to QEMU over vhost-user (virtio-rng), from the system's cryptographic RNG.")
        {
            socket, connect, fd, rate, printCapabilities, verbose,
        };
        root.SetAction(r =>
        {
            if (r.GetValue(printCapabilities))
            {
                SampleHost.PrintCapabilities("rng");
                return 0;
            }

            string? error = SampleEndpoint.TryCreate(r.GetValue(socket), r.GetValue(connect), r.GetValue(fd), () => SampleHost.DefaultSocketPath("vhost-user-rng"), out SampleEndpoint? endpoint);
            if (error is null && r.GetValue(rate) < 0)
            {
                error = $"--rate-limit {r.GetValue(rate)}: bytes per second, 0 for unlimited";
            }

            if (error is not null)
            {
                Console.Error.WriteLine("vhost-user-rng: " + error);
                endpoint?.Dispose();
                return 2;
            }

            using SampleEndpoint at = endpoint!;
            string? socketPath = at.ListenPath;
            using ILoggerFactory logging = SampleHost.CreateLoggerFactory(r.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information);
            ILogger logger = logging.CreateLogger("vhost-user-rng");
            try
            {
                using var device = new VirtioRngDevice(r.GetValue(rate), logger);
                using var daemon = new VhostUserDaemon(device, logging);
                int rc = SampleHost.Serve(daemon, at, logger, () =>
                {
                    logger.LogInformation("serving random bytes{Limit}", r.GetValue(rate) > 0 ? $", at most {r.GetValue(rate)} bytes/s" : string.Empty);
                    if (socketPath is not null)
                    {
                        SampleHost.PrintAttachHelp(socketPath, "rng0", "vhost-user-rng-pci", reconnect: null);
                    }
                });
                logger.LogInformation("served {Bytes} random bytes", device.BytesServed);
                return rc;
            }
            catch (Exception e) when (e is VhostException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                Console.Error.WriteLine("vhost-user-rng: " + e.Message);
                return 1;
            }
        });
        return root.Parse(args).Invoke();
    }
}
