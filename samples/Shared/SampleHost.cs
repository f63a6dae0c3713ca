using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using VhostUserBackend;

namespace VhostSamples;

/// <summary>
/// What every sample daemon does the same way (the vhost-user spec's "backend program
/// conventions"): a default socket path, <c>--print-capabilities</c> JSON, console logging, and
/// serving until SIGTERM/SIGINT with a clean exit.
/// </summary>
internal static class SampleHost
{
    /// <summary>The socket path used when <c>--socket-path</c> is not given: <c>$XDG_RUNTIME_DIR/NAME.sock</c>, else <c>/tmp/NAME-UID.sock</c>.</summary>
    public static string DefaultSocketPath(string name)
    {
        string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(runtime) && Directory.Exists(runtime))
        {
            return Path.Combine(runtime, name + ".sock");
        }

        return Path.Combine(Path.GetTempPath(), $"{name}-{Environment.UserName}.sock");
    }

    /// <summary>Writes the capability document (<c>{"type": ..., "features": [...]}</c>) to stdout.</summary>
    public static void PrintCapabilities(string type, params string[] features)
    {
        using Stream stdout = Console.OpenStandardOutput();
        using (var json = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("type", type);
            json.WriteStartArray("features");
            foreach (string f in features)
            {
                json.WriteStringValue(f);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        stdout.WriteByte((byte)'\n');
    }

    /// <summary>A console logger factory (single-line, timestamps) at <paramref name="level"/>.</summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel level) => LoggerFactory.Create(b => b
        .SetMinimumLevel(level)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        }));

    /// <summary>
    /// Serves <paramref name="daemon"/> at <paramref name="endpoint"/> (listening, connecting to a
    /// listening front-end, or an inherited socket) until SIGTERM or SIGINT (or, for a connected
    /// <c>--fd</c>, until that front-end leaves). Returns the process exit code.
    /// </summary>
    public static int Serve(VhostUserDaemon daemon, SampleEndpoint endpoint, ILogger logger, Action? onListening = null)
    {
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            logger.LogInformation("{Signal}: stopping", context.Signal);
            stop.Cancel();
        }

        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using IDisposable? stats = SampleStats.RegisterFromEnvironment();
        endpoint.Start(daemon);
        logger.LogInformation("vhost-user endpoint: {Endpoint}", endpoint.Description);
        onListening?.Invoke();
        using (stop.Token.Register(static d => ((VhostUserDaemon)d!).Stop(), daemon))
        {
            daemon.Wait();
        }

        if (endpoint.ListenPath is not null)
        {
            try
            {
                File.Delete(endpoint.ListenPath);
            }
            catch (IOException)
            {
            }
        }

        logger.LogInformation("stopped after {Connections} front-end connection(s)", daemon.ConnectionCount);
        return 0;
    }

    /// <summary>
    /// Prints <c>socket: PATH</c> (what scripts and tests wait for), an optional <paramref name="detail"/>
    /// line, and the QEMU options that attach the device to a guest with shared memfd RAM.
    /// </summary>
    /// <param name="socketPath">The listening socket.</param>
    /// <param name="chardev">The chardev id to show.</param>
    /// <param name="device">The QEMU device (e.g. <c>vhost-user-rng-pci</c>).</param>
    /// <param name="properties">More device properties after <c>chardev=</c> (<c>,num-queues=2</c>), or empty.</param>
    /// <param name="note">What to say about the guest and the QEMU version.</param>
    /// <param name="reconnect">The chardev's reconnect option, or null for none (QEMU's vhost-user-rng fails with a reconnecting chardev).</param>
    /// <param name="detail">A line printed after the socket, or null.</param>
    public static void PrintAttachHelp(string socketPath, string chardev, string device, string properties = "", string note = "attach a guest (its RAM must be a shared memfd; add your kernel/disk options):", string? reconnect = "reconnect=1", string? detail = null)
    {
        string sock = socketPath.Replace(",", ",,", StringComparison.Ordinal);
        Console.WriteLine($"socket: {socketPath}");
        if (detail is not null)
        {
            Console.WriteLine(detail);
        }

        Console.WriteLine(note);
        Console.WriteLine("  qemu-system-x86_64 -machine q35,memory-backend=mem -m 1G \\");
        Console.WriteLine("    -object memory-backend-memfd,id=mem,size=1G,share=on \\");
        Console.WriteLine($"    -chardev socket,id={chardev},path={sock}{(reconnect is null ? string.Empty : "," + reconnect)} \\");
        Console.WriteLine($"    -device {device},chardev={chardev}{properties} ...");
        Console.WriteLine("serving until Ctrl-C (SIGINT) or SIGTERM; QEMU may disconnect and reconnect any time");
    }
}
