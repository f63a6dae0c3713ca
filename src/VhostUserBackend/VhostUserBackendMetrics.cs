using System.Diagnostics.Metrics;

namespace VhostUserBackend;

/// <summary>
/// The daemon's instruments on a <see cref="Meter"/> named <see cref="VhostUserDaemon.MeterName"/>:
/// per-queue counters tagged <c>queue</c> = the queue index. Adding to a counter allocates
/// nothing (the tag's boxed index is made once per ring).
/// </summary>
internal sealed class VhostUserBackendMetrics : IDisposable
{
    public VhostUserBackendMetrics()
    {
        Meter = new Meter(VhostUserDaemon.MeterName);
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
