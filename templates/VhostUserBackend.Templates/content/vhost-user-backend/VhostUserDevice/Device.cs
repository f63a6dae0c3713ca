using Vhost.User.Messages;
using VhostUserBackend;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserDevice;

/// <summary>
/// The device. It completes every request without doing anything yet: replace
/// <see cref="Process"/> with the device's work (read the driver's buffers, write the results).
/// </summary>
public sealed class Device : IVhostUserBackend
{
    /// <summary>The number of virtqueues.</summary>
    public int QueueCount => QUEUE_COUNT;

    /// <summary>The largest queue size accepted.</summary>
    public ushort MaxQueueSize => MAX_QUEUE_SIZE;

    /// <summary>The virtio features offered (add the device type's feature bits here).</summary>
    public ulong Features => (ulong)(VhostUserVirtioFeatures.Version1 | VhostUserVirtioFeatures.RingEventIndex);

    /// <summary>Called on a worker thread when the driver kicks queue <paramref name="deviceEvent"/>.</summary>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int threadIndex)
    {
        foreach (Vring vring in vrings)
        {
            if (vring.Index != deviceEvent)
            {
                continue;
            }

            // Drain the ring, then re-enable notifications; loop if buffers arrived meanwhile.
            do
            {
                vring.DisableNotification();
                bool used = false;
                while (vring.TryPopDescriptorChain(out DescriptorChain chain))
                {
                    vring.AddUsed(chain.Head, Process(chain));
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

    /// <summary>Serves one request; returns the number of bytes written into the driver's buffers.</summary>
    private static uint Process(DescriptorChain chain)
    {
        GuestMemory memory = chain.Memory!;
        Span<byte> zeros = stackalloc byte[64];
        uint written = 0;
        foreach (VirtqBuffer buffer in chain)
        {
            if (buffer.IsWriteOnly)
            {
                // Example: zero-fill what the driver lets the device write.
                for (uint done = 0; done < buffer.Length;)
                {
                    int n = (int)Math.Min((uint)zeros.Length, buffer.Length - done);
                    memory.Write(buffer.Address + done, zeros[..n]);
                    done += (uint)n;
                }

                written += buffer.Length;
            }
        }

        return written;
    }
}
