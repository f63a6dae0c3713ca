using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using VhostUserBackend;

namespace VhostUserNet;

/// <summary>
/// vhost-user-net: virtio-net ports served to vhost-user front-ends (QEMU <c>-netdev vhost-user</c>),
/// connected to each other or to a built-in peer, never to a host interface. Exit codes: 0 after
/// SIGTERM/SIGINT (or when every <c>--fd</c> front-end left), 1 on a runtime failure, 2 on bad usage.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var socketPaths = new Option<string[]>("--socket-path", "-s")
        {
            Description = "Listen here for a front-end; give it once per port (several ports = one switch). Default: a path in the temp directory, printed",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var connects = new Option<string[]>("--connect")
        {
            Description = "Client mode: connect to a front-end listening here (QEMU -chardev socket,server=on,wait=off), and again whenever it goes away; once per port",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var fds = new Option<int[]>("--fd")
        {
            Description = "Serve the socket on this fd (once per port): a connected one (the port ends when that front-end leaves) or a listening one (front-ends one after another). With no --socket-path, --connect or --fd, a socket passed by systemd (LISTEN_FDS) is served as one port",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var printCapabilities = new Option<bool>("--print-capabilities") { Description = "Print the back-end's capabilities as JSON and exit" };
        var mode = new Option<string>("--mode", "-m")
        {
            Description = "switch: MAC-learning switch between the ports; cross: port 2k and 2k+1 wired to each other (no learning); responder: answer ARP and ICMP echo for --ip; sink: drop what is sent; source: fill every RX buffer",
            DefaultValueFactory = _ => "switch",
        };
        mode.AcceptOnlyFromAmong("switch", "cross", "responder", "sink", "source");
        var mac = new Option<string>("--mac") { Description = "The responder's MAC (and the source frames' source MAC)", DefaultValueFactory = _ => "02:00:00:00:00:01" };
        var ip = new Option<string>("--ip") { Description = "The responder's IPv4 address (TEST-NET-1 by default)", DefaultValueFactory = _ => NetSettings.DefaultIP.ToString() };
        var numQueues = new Option<int>("--num-queues") { Description = "RX/TX queue pairs per port (1-16; above 1 offers VIRTIO_NET_F_MQ)", DefaultValueFactory = _ => 1 };
        var poll = new Option<int>("--poll") { Description = "Polling window in microseconds after each event (0: off)", DefaultValueFactory = _ => 0 };
        var frameSize = new Option<int>("--frame-size") { Description = "Bytes of each frame in source mode (60-1514)", DefaultValueFactory = _ => 64 };
        var postcopy = new Option<bool>("--postcopy") { Description = "Offer postcopy live migration (PAGEFAULT; QEMU's postcopy-ram capability) instead of more than 8 memory slots; needs a userfaultfd that handles kernel faults (root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log protocol details (debug level)" };

        var root = new RootCommand("vhost-user-net: virtio-net ports for vhost-user front-ends, switched to each other or answered by a built-in peer (never a host interface).")
        {
            socketPaths, connects, fds, printCapabilities, mode, mac, ip, numQueues, poll, frameSize, postcopy, verbose,
        };
        root.SetAction(r =>
        {
            if (r.GetValue(printCapabilities))
            {
                Console.WriteLine("{\"type\": \"net\", \"features\": []}");
                return 0;
            }

            if (!BitConverter.IsLittleEndian)
            {
                return Usage("this sample handles little-endian hosts only");
            }

            if (!PhysicalAddress.TryParse(r.GetValue(mac), out PhysicalAddress? macAddress) || macAddress.GetAddressBytes().Length != 6 || (macAddress.GetAddressBytes()[0] & 1) != 0)
            {
                return Usage($"--mac {r.GetValue(mac)}: a unicast MAC address such as 02:00:00:00:00:01");
            }

            if (!IPAddress.TryParse(r.GetValue(ip), out IPAddress? ipAddress) || ipAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                return Usage($"--ip {r.GetValue(ip)}: an IPv4 address");
            }

            int pairs = r.GetValue(numQueues);
            if (pairs is < 1 or > 16)
            {
                return Usage($"--num-queues {pairs}: 1 to 16 queue pairs");
            }

            int pollMicroseconds = r.GetValue(poll);
            if (pollMicroseconds is < 0 or > 1_000_000)
            {
                return Usage($"--poll {pollMicroseconds}: 0 to 1000000 microseconds");
            }

            int frameBytes = r.GetValue(frameSize);
            if (frameBytes is < 60 or > 1514)
            {
                return Usage($"--frame-size {frameBytes}: 60 to 1514");
            }

            string[] paths = r.GetValue(socketPaths) ?? [];
            string[] connectPaths = r.GetValue(connects) ?? [];
            int[] handles = r.GetValue(fds) ?? [];
            if (handles.Any(h => h < 0))
            {
                return Usage("--fd: a non-negative file descriptor");
            }

            int portCount = paths.Length + connectPaths.Length + handles.Length;
            if (portCount > 64)
            {
                return Usage("at most 64 ports");
            }

            if (r.GetValue(mode) == "cross" && portCount % 2 != 0)
            {
                return Usage("--mode cross wires ports in pairs: give an even number of --socket-path/--connect/--fd");
            }

            var endpoints = new List<VhostSamples.SampleEndpoint>(portCount);
            endpoints.AddRange(paths.Select(VhostSamples.SampleEndpoint.Listen));
            endpoints.AddRange(connectPaths.Select(VhostSamples.SampleEndpoint.Connect));
            endpoints.AddRange(handles.Select(VhostSamples.SampleEndpoint.Inherited));
            if (portCount == 0)
            {
                if (SystemdSocketActivation.IsActivated)
                {
                    string? activationError = VhostSamples.SampleEndpoint.TryActivated(out VhostSamples.SampleEndpoint? activated);
                    if (activationError is not null)
                    {
                        return Usage(activationError);
                    }

                    endpoints.Add(activated!);
                }
                else
                {
                    endpoints.Add(VhostSamples.SampleEndpoint.Listen(Path.Combine(Path.GetTempPath(), $"vhost-user-net-{Environment.ProcessId}.sock")));
                }
            }

            var settings = new NetSettings
            {
                Mode = Enum.Parse<NetMode>(r.GetValue(mode)!, ignoreCase: true),
                Mac = macAddress,
                IP = ipAddress,
                QueuePairs = pairs,
                Poll = TimeSpan.FromMicroseconds(pollMicroseconds),
                FrameSize = frameBytes,
                Postcopy = r.GetValue(postcopy),
            };
            return Serve(settings, endpoints, r.GetValue(verbose));
        });

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (System.CommandLine.Parsing.ParseError error in parsed.Errors)
            {
                Console.Error.WriteLine("vhost-user-net: " + error.Message);
            }

            return 2;
        }

        return parsed.Invoke();
    }

    private static int Serve(NetSettings settings, List<VhostSamples.SampleEndpoint> endpoints, bool verbose)
    {
        using ILoggerFactory loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            })
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information));
        ILogger log = loggerFactory.CreateLogger("vhost-user-net");

        using var stop = new CancellationTokenSource();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        using IDisposable? stats = VhostSamples.SampleStats.RegisterFromEnvironment();

        using var fabric = new NetFabric(settings, endpoints.Count);

        // Every port on one worker thread (a DPDK lcore serving many ports): a frame goes from one
        // guest's TX ring into another's RX ring on that thread, with no hand-off, and one poller
        // serves every ring.
        using var workers = new VhostUserWorkerGroup(1, settings.Poll, loggerFactory);
        var options = new VhostUserDaemonOptions { WorkerGroup = workers, Postcopy = settings.Postcopy };
        var daemons = new List<VhostUserDaemon>();
        int exitCode = 0;
        try
        {
            for (int i = 0; i < fabric.Ports.Length; i++)
            {
                var daemon = new VhostUserDaemon(fabric.Ports[i], options, loggerFactory);
                daemons.Add(daemon);
                VhostSamples.SampleEndpoint endpoint = endpoints[i];
                endpoint.Start(daemon);
                log.LogInformation("port {Port}: {Endpoint}", i, endpoint.Description);
                if (endpoint.ListenPath is not null)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"port {i}: qemu-system-x86_64 ... -m 512M -object memory-backend-memfd,id=mem,size=512M,share=on -machine q35,memory-backend=mem -chardev socket,id=net{i},path={endpoint.ListenPath} -netdev vhost-user,id=n{i},chardev=net{i}{(settings.QueuePairs > 1 ? $",queues={settings.QueuePairs}" : string.Empty)} -device virtio-net-pci,netdev=n{i},mac=52:54:00:00:00:{i + 1:x2}{(settings.QueuePairs > 1 ? ",mq=on" : string.Empty)}"));
                }
            }

            log.LogInformation("{Mode} mode, {Ports} port(s), {Pairs} queue pair(s) each{Responder}", settings.Mode.ToString().ToLowerInvariant(), fabric.Ports.Length, settings.QueuePairs,
                settings.Mode == NetMode.Responder ? $"; answering ARP and ping for {settings.IP} at {FormatMac(settings.Mac)}" : string.Empty);

            try
            {
                Task.WhenAll(daemons.Select(d => d.WaitAsync())).Wait(stop.Token);
                log.LogInformation("every front-end left");
            }
            catch (OperationCanceledException)
            {
                log.LogInformation("stopping (signal)");
            }
        }
        catch (Exception e) when (e is Vhost.VhostException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            log.LogError("{Message}", e.Message);
            exitCode = 1;
        }
        finally
        {
            foreach (VhostUserDaemon d in daemons)
            {
                d.Dispose();
            }

            foreach (VhostSamples.SampleEndpoint e in endpoints)
            {
                e.Dispose();
            }

            foreach (NetPort p in fabric.Ports)
            {
                log.LogInformation("port {Port}: {Counters}", p.Index, p.Counters);
            }
        }

        return exitCode;
    }

    private static string FormatMac(PhysicalAddress mac) => string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private static int Usage(string message)
    {
        Console.Error.WriteLine("vhost-user-net: " + message);
        return 2;
    }
}
