using System.CommandLine;
using Microsoft.Extensions.Logging;
using Vhost;
using VhostSamples;
using VhostUserBackend;

namespace VhostUserInput;

/// <summary>
/// vhost-user-input: a virtio-input device for a guest, either a virtual keyboard that types the
/// text it is given (<c>--keyboard</c>) or a host evdev passed through (<c>--evdev</c>). Exit codes:
/// 0 stopped cleanly, 1 failure, 2 bad usage.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        var socket = new Option<string?>("--socket-path", "--socket") { Description = "Listen on this Unix socket (default: $XDG_RUNTIME_DIR/vhost-user-input.sock, else /tmp/vhost-user-input-USER.sock)" };
        var fd = new Option<int?>("--fd") { Description = "Serve the already connected vhost-user socket on this file descriptor (incompatible with --socket-path)" };
        var keyboard = new Option<bool>("--keyboard") { Description = "A virtual US keyboard that types the --type text and the lines read from stdin (--stdin)" };
        var evdev = new Option<string?>("--evdev") { Description = "Pass a host evdev through (/dev/input/eventN): its description, its events, and the guest's LEDs written back" };
        var grab = new Option<bool>("--grab") { Description = "With --evdev: grab the device (EVIOCGRAB), so the host does not see its events while the guest has it" };
        var type = new Option<string?>("--type") { Description = "With --keyboard: type this text once the driver takes events (\\n in it is Enter)" };
        var stdin = new Option<bool>("--stdin") { Description = "With --keyboard: type every line read from stdin, each followed by Enter" };
        var keyDelay = new Option<int>("--key-delay-ms") { Description = "With --keyboard: milliseconds between two key events (a press or a release), as a real keyboard paces them; 0 for none", DefaultValueFactory = _ => 10 };
        var name = new Option<string>("--name") { Description = "With --keyboard: the device name the guest sees", DefaultValueFactory = _ => "vhost-user-input keyboard" };
        var connect = new Option<string?>("--connect") { Description = "Client mode: connect to a front-end listening on this Unix socket (QEMU -chardev socket,server=on), and again whenever it goes away" };
        var printCapabilities = new Option<bool>("--print-capabilities") { Description = "Print the back-end's capabilities as JSON and exit" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log protocol details (debug level)" };
        var root = new RootCommand("Serve a virtio-input device to QEMU over vhost-user: a virtual keyboard, or a host evdev passed through.")
        {
            socket, connect, fd, keyboard, evdev, grab, type, stdin, keyDelay, name, printCapabilities, verbose,
        };
        root.SetAction(r =>
        {
            if (r.GetValue(printCapabilities))
            {
                SampleHost.PrintCapabilities("input");
                return 0;
            }

            string? evdevPath = r.GetValue(evdev);
            string? text = r.GetValue(type);
            string? error = SampleEndpoint.TryCreate(r.GetValue(socket), r.GetValue(connect), r.GetValue(fd), () => SampleHost.DefaultSocketPath("vhost-user-input"), out SampleEndpoint? endpoint)
                ?? CheckMode(r.GetValue(keyboard), evdevPath, r.GetValue(grab), text, r.GetValue(stdin));
            if (error is null && r.GetValue(keyDelay) is < 0 or > 10_000)
            {
                error = $"--key-delay-ms {r.GetValue(keyDelay)}: 0 to 10000";
            }

            if (error is null && text is not null)
            {
                text = text.Replace("\\n", "\n", StringComparison.Ordinal);
                error = text.Select((c, i) => AsciiKeyMap.TryGetKey(c, out _, out _) ? null : $"--type: character U+{(int)c:X4} at {i} has no key on a US keyboard").FirstOrDefault(e => e is not null);
            }

            if (error is not null)
            {
                Console.Error.WriteLine("vhost-user-input: " + error);
                endpoint?.Dispose();
                return 2;
            }

            using SampleEndpoint at = endpoint!;
            string? socketPath = at.ListenPath;
            using ILoggerFactory logging = SampleHost.CreateLoggerFactory(r.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information);
            ILogger logger = logging.CreateLogger("vhost-user-input");
            try
            {
                KeyboardSource? keys = evdevPath is null ? new KeyboardSource(r.GetValue(name)!, TimeSpan.FromMilliseconds(r.GetValue(keyDelay)), logger) : null;
                using EvdevSource? host = evdevPath is null ? null : new EvdevSource(evdevPath, r.GetValue(grab), logger);
                using (keys)
                {
                    IInputSource source = (IInputSource?)keys ?? host!;
                    var device = new VirtioInputDevice(source, logger);
                    using var daemon = new VhostUserDaemon(device, logging);
                    int rc = SampleHost.Serve(daemon, at, logger, () =>
                    {
                        logger.LogInformation("serving {Mode} \"{Name}\"", keys is null ? "evdev " + evdevPath : "keyboard", source.Config.Name);
                        if (keys is not null)
                        {
                            if (text is not null)
                            {
                                keys.Type(text);
                            }

                            if (r.GetValue(stdin))
                            {
                                StartStdinTyper(keys, logger);
                            }
                        }

                        if (socketPath is not null)
                        {
                            SampleHost.PrintAttachHelp(
                                socketPath,
                                "input0",
                                "vhost-user-input-pci",
                                note: "attach a QEMU 10 guest (its RAM must be a shared memfd; QEMU 7.2's vhost-user-input-pci needs KVM):",
                                reconnect: "reconnect-ms=1000");
                        }
                    });
                    logger.LogInformation("delivered {Events} events, received {Status} status events", device.EventsDelivered, device.StatusEvents);
                    return rc;
                }
            }
            catch (Exception e) when (e is VhostException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                Console.Error.WriteLine("vhost-user-input: " + e.Message);
                return 1;
            }
        });
        return root.Parse(args).Invoke();
    }

    private static string? CheckMode(bool keyboard, string? evdev, bool grab, string? text, bool stdin)
    {
        if (keyboard == (evdev is not null))
        {
            return "give exactly one of --keyboard and --evdev /dev/input/eventN";
        }

        if (grab && evdev is null)
        {
            return "--grab goes with --evdev";
        }

        return (text is not null || stdin) && !keyboard ? "--type and --stdin go with --keyboard" : null;
    }

    /// <summary>Types each line of stdin (plus Enter) on a background thread, until stdin ends.</summary>
    private static void StartStdinTyper(KeyboardSource keys, ILogger logger)
    {
        var thread = new Thread(() =>
        {
            while (Console.In.ReadLine() is { } line)
            {
                try
                {
                    keys.Type(line + "\n");
                    logger.LogInformation("typing {Count} characters", line.Length + 1);
                }
                catch (ArgumentException e)
                {
                    logger.LogWarning("not typed: {Reason}", e.Message);
                }
            }
        })
        {
            IsBackground = true,
            Name = "stdin typer",
        };
        thread.Start();
    }
}
