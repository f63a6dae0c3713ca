using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace Vhost.HostileTests.Targets;

/// <summary>
/// The in-process device under attack: copies each chain's readable bytes into its writable
/// buffers. It lets a hostile chain's <see cref="VirtqueueException"/> escape to the daemon's
/// worker on purpose: the framework, not the device, must survive it.
/// </summary>
public sealed class EchoDevice : IVhostUserBackend
{
    private readonly byte[] _scratch = new byte[65536];

    /// <inheritdoc/>
    public int QueueCount => 2;

    /// <inheritdoc/>
    public ushort MaxQueueSize => 1024;

    /// <inheritdoc/>
    public ulong Features => (ulong)(VirtioFeatures.Version1 | VirtioFeatures.RingEventIndex | VirtioFeatures.RingPacked | VirtioFeatures.RingIndirectDescriptors);

    /// <inheritdoc/>
    public VhostUserProtocolFeatures ProtocolFeatures => IVhostUserBackend.DefaultProtocolFeatures | VhostUserProtocolFeatures.Config;

    /// <summary>The device's config space (16 bytes).</summary>
    public byte[] Config { get; } = [.. Enumerable.Range(0, 16).Select(i => (byte)(0xC0 + i))];

    /// <summary>Chains completed.</summary>
    public long Completed;

    /// <summary>The migratable state: the magic <c>ECHO</c> and <see cref="Completed"/> (12 bytes).</summary>
    public VhostUserBackend.Migration.IVhostUserDeviceState DeviceState => new EchoState(this);

    /// <inheritdoc/>
    public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
    {
        foreach (Vring v in vrings)
        {
            if (v.Index != deviceEvent)
            {
                continue;
            }

            do
            {
                v.DisableNotification();
                while (v.TryPopDescriptorChain(out DescriptorChain chain))
                {
                    uint written = Copy(chain);
                    v.AddUsed(chain.Head, written);
                    Interlocked.Increment(ref Completed);
                }

                v.SignalUsedQueue();
            }
            while (v.EnableNotification());
        }
    }

    /// <inheritdoc/>
    public void GetConfig(uint offset, Span<byte> data)
    {
        if ((ulong)offset + (ulong)data.Length > (ulong)Config.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), "outside config space");
        }

        Config.AsSpan((int)offset, data.Length).CopyTo(data);
    }

    /// <inheritdoc/>
    public void UpdateMemory(GuestMemoryAtomic memory)
    {
    }

    private uint Copy(DescriptorChain chain)
    {
        GuestMemory memory = chain.Memory!;
        int read = 0;
        uint written = 0;
        foreach (VirtqBuffer b in chain)
        {
            if (!b.IsWriteOnly)
            {
                int n = (int)Math.Min(b.Length, (uint)(_scratch.Length - read));
                memory.Read(b.Address, _scratch.AsSpan(read, n));
                read += n;
            }
            else
            {
                int n = (int)Math.Min(b.Length, (uint)(read - (int)written));
                memory.Write(b.Address, _scratch.AsSpan((int)written, n));
                written += (uint)n;
            }
        }

        return written;
    }
}

/// <summary>The echo device's state: the magic <c>ECHO</c> and its completion count, rejected unless exactly that.</summary>
internal sealed class EchoState(EchoDevice device) : VhostUserBackend.Migration.IVhostUserDeviceState
{
    /// <summary>The magic that starts the state.</summary>
    public static ReadOnlySpan<byte> Magic => "ECHO"u8;

    public int MaxStateSize => 12;

    public void SaveState(Stream destination)
    {
        Span<byte> state = stackalloc byte[12];
        Magic.CopyTo(state);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(state[4..], Interlocked.Read(ref device.Completed));
        destination.Write(state);
    }

    public void LoadState(Stream source)
    {
        byte[] state = new byte[13];
        int n = source.ReadAtLeast(state, state.Length, throwOnEndOfStream: false);
        if (n != 12 || !state.AsSpan(0, 4).SequenceEqual(Magic))
        {
            throw new InvalidDataException($"not an echo device state ({n} bytes)");
        }

        Interlocked.Exchange(ref device.Completed, System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(state.AsSpan(4)));
    }
}
