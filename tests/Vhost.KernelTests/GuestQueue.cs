using Vhost.Kernel;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.KernelTests;

/// <summary>One split virtqueue laid out in <see cref="GuestRam"/> and handed to a kernel device: driver, kick and call eventfds.</summary>
internal sealed class GuestQueue : IDisposable
{
    private readonly Dictionary<ushort, ulong> _buffers = [];

    private GuestQueue(SplitQueueDriver driver)
    {
        Driver = driver;
    }

    public SplitQueueDriver Driver { get; }

    public EventFd Kick { get; } = new(EventFdFlags.NonBlocking);

    public EventFd Call { get; } = new(EventFdFlags.NonBlocking);

    public ulong Calls { get; private set; }

    /// <summary>The guest memory table of <paramref name="ram"/> (IOVA = GPA for vDPA).</summary>
    public static VhostMemoryRegionInfo[] MemoryTable(GuestRam ram)
        => [.. ram.Regions.Select(r => new VhostMemoryRegionInfo(r.GuestPhysicalAddress, r.Size, r.UserAddress, r.FileOffset, ram.FileHandle))];

    /// <summary>Lays out a ring and sets it up on the device: NUM, BASE 0, ADDR (guest addresses), KICK, CALL.</summary>
    public static GuestQueue Setup(VhostKernelBackend device, GuestRam ram, int index, ushort size, ushort maxSize = VhostKernelBackend.MaxQueueSize)
    {
        var q = new GuestQueue(new SplitQueueDriver(ram, size));
        device.SetVringNum(index, size);
        device.SetVringBase(index, 0);
        device.SetVringAddress(index, new VringConfigData(maxSize, size, VringFlags.None, q.Driver.DescriptorTableAddress, q.Driver.UsedRingAddress, q.Driver.AvailRingAddress));
        device.SetVringKick(index, q.Kick);
        device.SetVringCall(index, q.Call);
        return q;
    }

    /// <summary>Adds one chain, remembering the address of each buffer by head; publishes.</summary>
    public ushort Add(params VirtqBuffer[] buffers)
    {
        ushort head = Driver.AddBuffers(buffers);
        _buffers[head] = buffers[0].Address;
        Driver.Publish();
        return head;
    }

    /// <summary>The first buffer's guest address of a chain added with <see cref="Add"/>.</summary>
    public ulong AddressOf(ushort head) => _buffers[head];

    /// <summary>Waits until the device's used index reaches <paramref name="count"/> and a call was signalled.</summary>
    public bool WaitUsed(ushort count, TimeSpan timeout)
    {
        DateTime end = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Call.TryRead(out ulong v))
            {
                Calls += v;
            }

            if ((ushort)(Driver.DeviceUsedIndex - count) < 0x8000 && Calls > 0)
            {
                return true;
            }

            if (DateTime.UtcNow > end)
            {
                return false;
            }

            Thread.Sleep(10);
        }
    }

    public void Dispose()
    {
        Kick.Dispose();
        Call.Dispose();
    }
}
