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
}
