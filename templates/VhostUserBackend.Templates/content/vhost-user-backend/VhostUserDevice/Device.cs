using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Virtio;

namespace VhostUserDevice;

/// <summary>The device: completes every request by zero-filling the buffers the driver lets it write.</summary>
public sealed class Device : IVhostUserBackend
{
    private static readonly byte[] Zeros = new byte[4096];

    public int QueueCount => QUEUE_COUNT;

    public ushort MaxQueueSize => MAX_QUEUE_SIZE;

    // Add the device type's feature bits here. VhostUserBackend.Devices.Blk, .Net and .Input hold
    // those device types' feature bits, request and event layouts and config spaces.
    public ulong Features => (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex);

    // A config space, if the device type has one: return it here and the daemon offers CONFIG,
    // serves the driver's reads and writes, and tells the driver when Update/Set change it, e.g.
    // public VirtioConfigSpace? ConfigSpace { get; } = VirtioConfigSpace.Create(new VirtioBlkConfig { Capacity = sectors });

    // Runs on a worker thread when the driver kicks queue `deviceEvent`.
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        foreach (Vring vring in vrings)
        {
            if (vring.Index != deviceEvent)
            {
                continue;
            }

            // A driver-to-device queue: drain it, and loop if buffers arrived while notifications
            // were off. A device-to-driver queue (events the device produces) needs the other loop
            // in docs/writing-a-backend.md: this one would spin on a queue the driver keeps full.
            // A request that completes later: keep the chain, call vring.Complete(chain, n) from any thread.
            do
            {
                vring.DisableNotification();
                bool used = false;
                while (vring.TryPopDescriptorChain(out DescriptorChain chain))
                {
                    uint written = 0;
                    foreach (VirtqBuffer buffer in chain) // the device's work goes here
                    {
                        for (uint done = 0; buffer.IsWriteOnly && done < buffer.Length;)
                        {
                            int n = (int)Math.Min((uint)Zeros.Length, buffer.Length - done);
                            chain.Memory.Write(buffer.Address + done, Zeros.AsSpan(0, n));
                            done += (uint)n;
                            written += (uint)n;
                        }
                    }

                    vring.AddUsed(chain.Head, written);
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
}
