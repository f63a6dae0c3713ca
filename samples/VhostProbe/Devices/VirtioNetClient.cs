using System.Buffers.Binary;
using Vhost.Vmm;
using VhostUserBackend.Devices.Net;
using VhostUserBackend.Virtio;

namespace VhostProbe.Devices;

/// <summary>
/// Sends and receives Ethernet frames on a virtio-net device (queue 0 RX, queue 1 TX) through a
/// <see cref="VmmDevice"/>. Every frame carries the 12-byte virtio_net_hdr (VERSION_1 layout,
/// no offloads). RX buffers are posted once and re-posted after each receive.
/// </summary>
public sealed class VirtioNetClient
{
    /// <summary>Size of the virtio-net header with VERSION_1.</summary>
    public const int HeaderSize = VirtioNetHeader.Size;

    /// <summary>Largest frame handled (no MRG_RXBUF: one buffer per frame).</summary>
    public const int MaxFrame = 1514;

    private const int SlotSize = 2048;

    private readonly VmmDevice _device;
    private readonly VmmQueue _rx;
    private readonly VmmQueue _tx;
    private readonly ulong[] _rxBuf;
    private readonly int[] _rxSlotOfHead;
    private readonly ulong[] _txBuf;
    private readonly int[] _txSlotOfHead;
    private readonly Stack<int> _txFree = new();

    /// <summary>Posts every RX buffer.</summary>
    /// <param name="device">A started virtio-net device with at least 2 queues.</param>
    public VirtioNetClient(VmmDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.Queues.Count < 2)
        {
            throw new ArgumentException("virtio-net needs an RX and a TX queue", nameof(device));
        }

        _device = device;
        _rx = device.Queues[0];
        _tx = device.Queues[1];
        _rxBuf = new ulong[_rx.Driver.Size];
        _rxSlotOfHead = new int[_rx.Driver.Size];
        _txBuf = new ulong[_tx.Driver.Size];
        _txSlotOfHead = new int[_tx.Driver.Size];
        for (int i = 0; i < _txBuf.Length; i++)
        {
            _txBuf[i] = device.Ram.Allocate(SlotSize, 64);
            _txFree.Push(i);
        }

        for (int i = 0; i < _rxBuf.Length; i++)
        {
            _rxBuf[i] = device.Ram.Allocate(SlotSize, 64);
            PostRx(i);
        }
    }

    /// <summary>Frames sent.</summary>
    public long Sent { get; private set; }

    /// <summary>Frames received.</summary>
    public long Received { get; private set; }

    /// <summary>Queues a frame on TX (reclaims completed TX buffers first).</summary>
    /// <param name="frame">The Ethernet frame (no header).</param>
    /// <returns>False when every TX buffer is in flight.</returns>
    public bool TrySend(ReadOnlySpan<byte> frame)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(frame.Length, MaxFrame, nameof(frame));
        ReclaimTx();
        if (_txFree.Count == 0)
        {
            return false;
        }

        int slot = _txFree.Pop();
        Span<byte> b = _device.Ram.GetSpan(_txBuf[slot], HeaderSize + frame.Length);
        b[..HeaderSize].Clear();
        frame.CopyTo(b[HeaderSize..]);
        ushort head = _tx.Submit([new VirtqBuffer(_txBuf[slot], (uint)(HeaderSize + frame.Length), false)]);
        _txSlotOfHead[head] = slot;
        Sent++;
        return true;
    }

    /// <summary>Receives one frame, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="destination">Receives the frame (without the header).</param>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The frame length, or -1 on timeout.</returns>
    public int Receive(Span<byte> destination, TimeSpan timeout)
    {
        VmmCompletion c;
        try
        {
            c = _rx.WaitForCompletion(timeout);
        }
        catch (TimeoutException)
        {
            return -1;
        }

        int slot = _rxSlotOfHead[c.Head];
        int len = (int)Math.Min(c.Length, SlotSize) - HeaderSize;
        if (len < 0)
        {
            PostRx(slot);
            throw new InvalidDataException($"RX completion of {c.Length} bytes is shorter than the virtio-net header");
        }

        _device.Ram.GetSpan(_rxBuf[slot] + HeaderSize, len).CopyTo(destination);
        PostRx(slot);
        Received++;
        return len;
    }

    /// <summary>Builds a test frame: broadcast-free unicast MACs, an experimental EtherType, a sequence number and a fill byte.</summary>
    /// <param name="destination">The frame buffer (60 bytes or more).</param>
    /// <param name="sequence">The sequence number (at offset 14).</param>
    /// <param name="length">Frame length (at least 60).</param>
    /// <returns>The frame.</returns>
    public static Span<byte> BuildFrame(Span<byte> destination, uint sequence, int length = 64)
    {
        Span<byte> f = destination[..length];
        ReadOnlySpan<byte> dst = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        ReadOnlySpan<byte> src = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
        dst.CopyTo(f);
        src.CopyTo(f[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], 0x88B5);
        BinaryPrimitives.WriteUInt32LittleEndian(f[14..], sequence);
        f[18..].Fill((byte)sequence);
        return f;
    }

    private void PostRx(int slot)
    {
        ushort head = _rx.Submit([new VirtqBuffer(_rxBuf[slot], SlotSize, true)]);
        _rxSlotOfHead[head] = slot;
    }

    private void ReclaimTx()
    {
        while (_tx.TryGetCompletion(out VmmCompletion c))
        {
            _txFree.Push(_txSlotOfHead[c.Head]);
        }
    }
}
