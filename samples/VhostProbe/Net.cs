using System.Buffers.Binary;
using VhostProbe.Devices;
using Vhost.Vmm;

namespace VhostProbe;

/// <summary>The <c>net</c> workload: send numbered frames, collect what comes back.</summary>
public static class Net
{
    /// <summary>Sends <paramref name="count"/> frames and receives until all came back or <paramref name="wait"/> passes without a frame.</summary>
    /// <param name="device">A started virtio-net device (queues 0 RX, 1 TX).</param>
    /// <param name="count">Frames.</param>
    /// <param name="frameSize">Frame bytes.</param>
    /// <param name="wait">Idle time after which receiving stops.</param>
    /// <param name="window">Frames in flight at most (sent, not yet back): keeps the RX ring from overflowing, which a back-end answers by dropping.</param>
    /// <returns>The counts.</returns>
    public static NetResult Exchange(VmmDevice device, int count, int frameSize, TimeSpan wait, int window = 32)
        => Exchange(new VirtioNetClient(device), count, frameSize, wait, window);

    /// <summary>Like <see cref="Exchange(VmmDevice, int, int, TimeSpan, int)"/> on a client whose RX buffers are already posted.</summary>
    /// <param name="net">The client.</param>
    /// <param name="count">Frames.</param>
    /// <param name="frameSize">Frame bytes.</param>
    /// <param name="wait">Idle time after which receiving stops.</param>
    /// <param name="window">Frames in flight at most.</param>
    /// <returns>The counts.</returns>
    public static NetResult Exchange(VirtioNetClient net, int count, int frameSize, TimeSpan wait, int window = 32)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        byte[] frame = new byte[frameSize];
        byte[] rx = new byte[2048];
        byte[] expect = new byte[frameSize];
        var seen = new HashSet<uint>();
        long received = 0, matching = 0, swapped = 0;
        int sent = 0;
        long lastProgress = Environment.TickCount64;
        while (sent < count || received < sent)
        {
            while (sent < count && sent - received < window && net.TrySend(VirtioNetClient.BuildFrame(frame, (uint)sent, frameSize)))
            {
                sent++;
                lastProgress = Environment.TickCount64;
            }

            if (Environment.TickCount64 - lastProgress > (long)wait.TotalMilliseconds)
            {
                break;
            }

            int len = net.Receive(rx, sent < count ? TimeSpan.FromMilliseconds(1) : wait);
            if (len < 0)
            {
                if (sent < count)
                {
                    continue;
                }

                break;
            }

            received++;
            lastProgress = Environment.TickCount64;
            if (len < 18)
            {
                continue;
            }

            uint seq = BinaryPrimitives.ReadUInt32LittleEndian(rx.AsSpan(14));
            if (seq < (uint)sent && len == frameSize)
            {
                VirtioNetClient.BuildFrame(expect, seq, frameSize);
                bool same = rx.AsSpan(12, len - 12).SequenceEqual(expect.AsSpan(12));
                bool asSent = rx.AsSpan(0, 12).SequenceEqual(expect.AsSpan(0, 12));
                bool macSwap = rx.AsSpan(0, 6).SequenceEqual(expect.AsSpan(6, 6)) && rx.AsSpan(6, 6).SequenceEqual(expect.AsSpan(0, 6));
                if (same && (asSent || macSwap) && seen.Add(seq))
                {
                    matching++;
                    if (macSwap)
                    {
                        swapped++;
                    }
                }
            }
        }

        return new NetResult(sent, received, matching, swapped);
    }
}
