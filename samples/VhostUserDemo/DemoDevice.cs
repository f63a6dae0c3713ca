using System.Text;
using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Virtio;

namespace VhostUserDemo;

/// <summary>
/// A toy device on the daemon: one queue; each chain the driver makes available gets a greeting
/// written into its device-writable buffers and goes back on the used ring, with a call.
/// </summary>
internal sealed class DemoDevice : IVhostUserBackend
{
    private static readonly byte[] Greeting = Encoding.ASCII.GetBytes("hello from the vhost-user back-end");

    public int QueueCount => 1;

    public ushort MaxQueueSize => 256;

    public ulong Features => (ulong)VirtioFeatures.Version1;

    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        foreach (Vring vring in vrings)
        {
            if (vring.Index != deviceEvent)
            {
                continue;
            }

            do
            {
                vring.DisableNotification();
                bool used = false;
                while (vring.TryPopDescriptorChain(out DescriptorChain chain))
                {
                    DescriptorChainWriter writer = chain.CreateWriter();
                    int written = writer.Write(Greeting.AsSpan(0, (int)Math.Min((ulong)Greeting.Length, writer.Remaining)));
                    Console.WriteLine($"  backend  | ring {vring.Index}: chain {chain.Head} popped, {written} bytes written into it");
                    vring.AddUsed(chain.Head, (uint)written);
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
