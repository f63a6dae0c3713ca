using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using Vhost.User;
using Vhost.Virtio;
using Vhost.Vmm;
using VhostUserBackend;
using VhostUserBackend.Devices.Input;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;
using VhostUserInput;

namespace Vhost.TestSupport;

/// <summary>
/// The vhost-user-input sample's device on an <see cref="IInputSource"/>, served by a
/// <see cref="VhostUserDaemon"/> and driven over vhost-user by a model driver
/// (<see cref="VmmVhostDevice"/>): queue 0 events, queue 1 status. For the sample's tests on the
/// host and in the kernel guest.
/// </summary>
internal sealed class InputDeviceRig : IDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private readonly string _socket = Path.Combine(Path.GetTempPath(), $"vinput-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
    private readonly Dictionary<ushort, ulong> _eventBuffers = [];
    private readonly VhostUserDaemon _daemon;
    private readonly VhostUserFrontend _frontend;
    private readonly VmmVhostDevice _vmm;

    public InputDeviceRig(IInputSource source)
    {
        _daemon = new VhostUserDaemon(new VirtioInputDevice(source, NullLogger.Instance));
        _daemon.Start(_socket);
        _frontend = VhostUserFrontend.Connect(_socket, Wait);
        Ram = GuestRam.Create(1 << 20);
        _vmm = new VmmVhostDevice(_frontend, Ram, VringAddressKind.FrontendVirtual);
        _vmm.SetOwner();
        _vmm.SetFeatures((ulong)VirtioFeatures.RingEventIndex, required: (ulong)VirtioFeatures.Version1);
        _vmm.SetMemoryTable();
        EventQueue = _vmm.AddQueue(16);
        StatusQueue = _vmm.AddQueue(16);
    }

    public GuestRam Ram { get; }

    public VmmQueue EventQueue { get; }

    public VmmQueue StatusQueue { get; }

    /// <summary>Posts <paramref name="count"/> 8-byte event buffers.</summary>
    public void PostEventBuffers(int count)
    {
        for (int i = 0; i < count; i++)
        {
            ulong buffer = Ram.Allocate(VirtioInputEvent.Size, 8);
            _eventBuffers[EventQueue.Submit([new VirtqBuffer(buffer, VirtioInputEvent.Size, true)])] = buffer;
        }
    }

    /// <summary>Waits for the next used event buffer and returns its event.</summary>
    public VirtioInputEvent TakeEvent()
    {
        VmmCompletion done = EventQueue.WaitForCompletion(Wait);
        Assert.Equal((uint)VirtioInputEvent.Size, done.Length);
        return MemoryMarshal.Read<VirtioInputEvent>(Ram.GetSpan(_eventBuffers[done.Head], VirtioInputEvent.Size));
    }

    /// <summary>Sends <paramref name="status"/> and a SYN in one status chain and waits until the device returned it.</summary>
    public void SendStatus(VirtioInputEvent status)
    {
        ulong buffer = Ram.Allocate(2 * VirtioInputEvent.Size, 8);
        MemoryMarshal.Write(Ram.GetSpan(buffer, VirtioInputEvent.Size), status);
        MemoryMarshal.Write(Ram.GetSpan(buffer + VirtioInputEvent.Size, VirtioInputEvent.Size), new VirtioInputEvent(VirtioInputEventType.Synchronization, 0, 0));
        ushort head = StatusQueue.Submit([new VirtqBuffer(buffer, 2 * VirtioInputEvent.Size, false)]);
        Assert.Equal(0u, StatusQueue.WaitForCompletion(head, Wait).Length);
    }

    public void Dispose()
    {
        _vmm.Dispose();
        _frontend.Dispose();
        _daemon.Dispose();
        Ram.Dispose();
        File.Delete(_socket);
    }
}
