using System.Diagnostics.Metrics;

namespace VhostUserBackend;

/// <summary>
/// The daemon's instruments on a <see cref="Meter"/> named <see cref="VhostUserDaemon.MeterName"/>:
/// per-queue counters tagged <c>queue</c> = the queue index, and two observable instruments of
/// the daemon's connection state, which a monitoring tool sees from the start (a counter shows
/// only once something was counted). Adding to a counter allocates nothing (the tag's boxed
/// index is made once per ring).
/// </summary>
internal sealed class VhostUserBackendMetrics : IDisposable
{
    /// <summary>Creates the meter and its instruments for rings without a daemon (never connected).</summary>
    public VhostUserBackendMetrics()
        : this(static () => false, static () => 0)
    {
    }

    /// <summary>Creates the meter and its instruments.</summary>
    /// <param name="connected">Whether a front-end is connected now.</param>
    /// <param name="connections">The front-end connections so far.</param>
    public VhostUserBackendMetrics(Func<bool> connected, Func<long> connections)
    {
        Meter = new Meter(VhostUserDaemon.MeterName);
        Meter.CreateObservableUpDownCounter("vhost_user.frontend.connected", () => connected() ? 1 : 0, "{connection}", "Whether a front-end is connected (1) or not (0)");
        Meter.CreateObservableCounter("vhost_user.frontend.connections", connections, "{connection}", "Front-end connections served so far, the current one included");
        Kicks = Meter.CreateCounter<long>("vhost_user.queue.kicks", "{kick}", "Kick notifications received from the driver");
        Calls = Meter.CreateCounter<long>("vhost_user.queue.calls", "{call}", "Used-buffer notifications (call eventfd signals) sent to the driver");
        Descriptors = Meter.CreateCounter<long>("vhost_user.queue.descriptors", "{chain}", "Descriptor chains taken from the available ring");
        Bytes = Meter.CreateCounter<long>("vhost_user.queue.bytes", "By", "Bytes the device reported as written into used buffers");
    }

    public Meter Meter { get; }

    public Counter<long> Kicks { get; }

    public Counter<long> Calls { get; }

    public Counter<long> Descriptors { get; }

    public Counter<long> Bytes { get; }

    public void Dispose() => Meter.Dispose();
}
