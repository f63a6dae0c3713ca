using Vhost.Virtio;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Hosting.Tests;

/// <summary>The test device: one queue; each chain is returned to the driver with 0 bytes written.</summary>
public sealed class EchoDevice : IVhostUserBackend
{
    public int QueueCount => 1;

    public ushort MaxQueueSize => 256;

    public ulong Features => (ulong)VirtioFeatures.Version1;

    public int Completed;

    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        Vring vring = vrings[0];
        do
        {
            vring.DisableNotification();
            bool used = false;
            while (vring.TryPopDescriptorChain(out DescriptorChain chain))
            {
                vring.AddUsed(chain.Head, 0);
                Interlocked.Increment(ref Completed);
                used = true;
            }

            if (used)
            {
                vring.SignalUsedQueue();
            }
        }
        while (vring.EnableNotification());
    }
}

/// <summary>A second device type, to run two daemons in one host.</summary>
public sealed class OtherDevice : IVhostUserBackend
{
    public int QueueCount => 2;

    public ushort MaxQueueSize => 128;

    public ulong Features => (ulong)VirtioFeatures.Version1;

    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
    }
}
