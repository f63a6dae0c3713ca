using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vhost.GuestHarness;

/// <summary>
/// A client of QEMU's machine protocol (QMP) over its Unix socket
/// (<c>-qmp unix:PATH,server=on,wait=off</c>): capabilities negotiation, one command at a time,
/// and the asynchronous events QEMU sends in between (kept for <see cref="WaitForEventAsync"/>).
/// </summary>
public sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    private readonly List<JsonObject> _events = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _disposed;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, new UTF8Encoding(false));
    }

    /// <summary>The QEMU version the greeting announced (major.minor.micro).</summary>
    public Version QemuVersion { get; private set; } = new(0, 0);

    /// <summary>Every event received so far, oldest first (name, data, timestamp as QEMU sent them).</summary>
    public IReadOnlyList<JsonObject> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Connects to a QMP socket (retrying until QEMU listens), reads the greeting and leaves capabilities negotiation mode.</summary>
    /// <param name="path">The socket path.</param>
    /// <param name="timeout">How long to keep trying.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A client in command mode.</returns>
    /// <exception cref="TimeoutException">QEMU did not accept a connection in time.</exception>
    public static async Task<QmpClient> ConnectAsync(string path, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                var client = new QmpClient(socket);
                try
                {
                    await client.HandshakeAsync(cancellationToken).ConfigureAwait(false);
                    return client;
                }
                catch
                {
                    client.Dispose();
                    throw;
                }
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new TimeoutException($"QMP socket {path} did not accept a connection within {timeout.TotalSeconds:0} s: {e.Message}", e);
            }
        }
    }

    /// <summary>Runs one command and returns its <c>return</c> value.</summary>
    /// <param name="command">The command (e.g. <c>query-status</c>).</param>
    /// <param name="arguments">Its arguments, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the wait for the answer.</param>
    /// <returns>The returned value (an empty object for commands that return nothing).</returns>
    /// <exception cref="QmpException">QEMU answered with an error.</exception>
    /// <exception cref="IOException">QEMU closed the socket (it exited).</exception>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            request["arguments"] = arguments.DeepClone();
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            byte[] line = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
            await _stream.WriteAsync(line, cancellationToken).ConfigureAwait(false);
            while (true)
            {
                JsonObject message = await ReadMessageAsync(cancellationToken).ConfigureAwait(false);
                if (message.ContainsKey("event"))
                {
                    continue;
                }

                if (message["error"] is JsonObject error)
                {
                    throw new QmpException(command, (string?)error["class"] ?? "?", (string?)error["desc"] ?? error.ToJsonString());
                }

                return message["return"];
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Runs a human monitor command (<c>human-monitor-command</c>) and returns its text.</summary>
    /// <param name="commandLine">The HMP command line.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>What the monitor printed.</returns>
    public async Task<string> HumanAsync(string commandLine, CancellationToken cancellationToken = default)
    {
        JsonNode? r = await ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = commandLine }, cancellationToken).ConfigureAwait(false);
        return r?.GetValue<string>() ?? string.Empty;
    }

    /// <summary>
    /// Waits for an event named <paramref name="name"/> received after the first
    /// <paramref name="seenBefore"/> events (see <see cref="Events"/>) and, when given, matching
    /// <paramref name="match"/>. Reads the socket while it waits.
    /// </summary>
    /// <param name="name">The event name, e.g. <c>DEVICE_DELETED</c>.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="seenBefore">Events already seen that do not count.</param>
    /// <param name="match">An extra condition on the event object.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The event.</returns>
    /// <exception cref="TimeoutException">No such event in time.</exception>
    public async Task<JsonObject> WaitForEventAsync(string name, TimeSpan timeout, int seenBefore = 0, Func<JsonObject, bool>? match = null, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        while (true)
        {
            lock (_events)
            {
                for (int i = seenBefore; i < _events.Count; i++)
                {
                    if ((string?)_events[i]["event"] == name && (match is null || match(_events[i])))
                    {
                        return _events[i];
                    }
                }
            }

            try
            {
                // query-version is a harmless round trip that drains pending events.
                await ExecuteAsync("query-version", cancellationToken: cts.Token).ConfigureAwait(false);
                await Task.Delay(100, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"no QMP event {name} within {timeout.TotalSeconds:0} s; events seen: {string.Join(", ", Events.Select(e => (string?)e["event"]))}");
            }
        }
    }

    /// <summary>Closes the socket.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _reader.Dispose();
        _stream.Dispose();
        _socket.Dispose();
        _gate.Dispose();
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        JsonObject greeting = await ReadMessageAsync(cancellationToken).ConfigureAwait(false);
        if (greeting["QMP"]?["version"]?["qemu"] is JsonObject v)
        {
            QemuVersion = new Version((int?)v["major"] ?? 0, (int?)v["minor"] ?? 0, (int?)v["micro"] ?? 0);
        }

        await ExecuteAsync("qmp_capabilities", cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private async Task<JsonObject> ReadMessageAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            string? line = await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new IOException("QEMU closed its QMP socket");
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            JsonObject message = JsonNode.Parse(line) as JsonObject ?? throw new IOException($"QMP sent something that is not an object: {line}");
            if (message.ContainsKey("event"))
            {
                lock (_events)
                {
                    _events.Add(message);
                }
            }

            return message;
        }
    }
}

/// <summary>A QMP command that QEMU answered with an error.</summary>
/// <param name="command">The command.</param>
/// <param name="errorClass">QEMU's error class (e.g. <c>GenericError</c>).</param>
/// <param name="description">QEMU's description.</param>
public sealed class QmpException(string command, string errorClass, string description)
    : Exception($"QMP {command} failed: {errorClass}: {description}")
{
    /// <summary>QEMU's error class.</summary>
    public string ErrorClass { get; } = errorClass;

    /// <summary>QEMU's description of the error.</summary>
    public string Description { get; } = description;
}
