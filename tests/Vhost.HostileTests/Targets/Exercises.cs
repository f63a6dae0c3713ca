using System.Buffers.Binary;
using Vhost.Vmm;
using VhostUserBackend.Virtio;

namespace Vhost.HostileTests.Targets;

/// <summary>Echo (the in-process device): 64 readable bytes come back in the writable buffer.</summary>
public sealed class EchoExercise : IDeviceExercise
{
    /// <inheritdoc/>
    public VmmDeviceOptions Options { get; } = new() { QueueCount = 1, QueueSize = 64, MemorySize = 2 << 20 };

    /// <inheritdoc/>
    public void Run(VmmDevice device, TimeSpan timeout)
    {
        byte[] payload = [.. Enumerable.Range(0, 64).Select(i => (byte)(i * 7 + 3))];
        ulong input = device.Ram.Allocate(64, 16);
        ulong output = device.Ram.Allocate(64, 16);
        device.Ram.Write(input, payload);
        device.Ram.GetSpan(output, 64).Clear();
        ushort head = device.Queues[0].Submit([new VirtqBuffer(input, 64, false), new VirtqBuffer(output, 64, true)]);
        VmmCompletion c = device.Queues[0].WaitForCompletion(head, timeout);
        Assert.Equal(64u, c.Length);
        Assert.Equal(payload, device.Ram.GetSpan(output, 64).ToArray());
    }
}

/// <summary>virtio-rng (vhost-user-rng): one writable buffer comes back filled.</summary>
public sealed class RngExercise : IDeviceExercise
{
    /// <inheritdoc/>
    public VmmDeviceOptions Options { get; } = new() { QueueCount = 1, QueueSize = 64, MemorySize = 2 << 20 };

    /// <inheritdoc/>
    public void Run(VmmDevice device, TimeSpan timeout)
    {
        ulong output = device.Ram.Allocate(64, 16);
        ushort head = device.Queues[0].Submit([new VirtqBuffer(output, 64, true)]);
        VmmCompletion c = device.Queues[0].WaitForCompletion(head, timeout);
        Assert.InRange(c.Length, 1u, 64u);
    }
}

/// <summary>virtio-blk (vhost-user-blk): VIRTIO_BLK_T_GET_ID answers with status OK.</summary>
public sealed class BlkExercise : IDeviceExercise
{
    private const uint GetId = 8;

    /// <inheritdoc/>
    public VmmDeviceOptions Options { get; } = new() { QueueCount = 1, QueueSize = 64, MemorySize = 2 << 20 };

    /// <inheritdoc/>
    public void Run(VmmDevice device, TimeSpan timeout)
    {
        ulong header = device.Ram.Allocate(16, 16);
        ulong id = device.Ram.Allocate(20, 16);
        ulong status = device.Ram.Allocate(1, 16);
        Span<byte> h = device.Ram.GetSpan(header, 16);
        h.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(h, GetId);
        device.Ram.GetSpan(status, 1)[0] = 0xFF;
        ushort head = device.Queues[0].Submit([new VirtqBuffer(header, 16, false), new VirtqBuffer(id, 20, true), new VirtqBuffer(status, 1, true)]);
        device.Queues[0].WaitForCompletion(head, timeout);
        Assert.Equal(0, device.Ram.GetSpan(status, 1)[0]);
    }
}

/// <summary>
/// virtio-input (vhost-user-input): a status event (the driver setting a keyboard LED) in one
/// readable buffer on the status queue comes back used, length 0.
/// </summary>
public sealed class InputExercise : IDeviceExercise
{
    private const int StatusQueue = 1;

    /// <inheritdoc/>
    public VmmDeviceOptions Options { get; } = new() { QueueCount = 2, QueueSize = 64, MemorySize = 2 << 20 };

    /// <inheritdoc/>
    public void Run(VmmDevice device, TimeSpan timeout)
    {
        // struct virtio_input_event { le16 type; le16 code; le32 value; }: EV_LED (0x11), LED_CAPSL (1), on.
        ulong status = device.Ram.Allocate(8, 16);
        Span<byte> e = device.Ram.GetSpan(status, 8);
        BinaryPrimitives.WriteUInt16LittleEndian(e, 0x11);
        BinaryPrimitives.WriteUInt16LittleEndian(e[2..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 1);
        ushort head = device.Queues[StatusQueue].Submit([new VirtqBuffer(status, 8, false)]);
        VmmCompletion c = device.Queues[StatusQueue].WaitForCompletion(head, timeout);
        Assert.Equal(0u, c.Length);
    }
}

/// <summary>
/// Devices whose requests need more than the socket (vhost-user-net needs a tap or a peer): the
/// full start-up sequence succeeds and the daemon answers GET_FEATURES and GET_VRING_BASE.
/// </summary>
public sealed class StartOnlyExercise : IDeviceExercise
{
    /// <inheritdoc/>
    public VmmDeviceOptions Options { get; } = new() { QueueCount = 1, QueueSize = 64, MemorySize = 2 << 20 };

    /// <inheritdoc/>
    public void Run(VmmDevice device, TimeSpan timeout)
    {
        Assert.NotEqual(0UL, device.Frontend.GetFeatures());
        device.Frontend.GetVringBase(0);
    }
}
