using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Testing;

namespace Vhost.Vmm;

/// <summary>
/// The VMM side of one vhost-user device: guest RAM in a memfd described to the back-end,
/// split virtqueues laid out in it with <see cref="SplitQueueDriver"/>, and the start-up
/// sequence a VMM runs (GET_FEATURES, GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
/// GET_MAX_MEM_SLOTS, SET_OWNER, SET_FEATURES, SET_MEM_TABLE, then per queue SET_VRING_NUM,
/// SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_CALL, SET_VRING_KICK, and SET_VRING_ENABLE). The
/// steps every transport shares are <see cref="VmmVhostDevice"/>'s; this is the vhost-user layer on top.
/// Used by the integration tests, the probe tool and small .NET VMMs. Owns the front-end.
/// </summary>
public sealed class VmmDevice : IDisposable
{
    /// <summary>VIRTIO_RING_F_INDIRECT_DESC (bit 28).</summary>
    public const ulong IndirectDescriptorsFeature = VmmVhostDevice.IndirectDescriptorsFeature;

    private VmmDevice(VhostUserFrontend frontend, VmmVhostDevice device)
    {
        Frontend = frontend;
        Device = device;
    }

    /// <summary>The transport-independent part: features, memory table and rings, driven through <see cref="IVhostBackend"/>.</summary>
    public VmmVhostDevice Device { get; }

    /// <summary>The front-end (owned by this device).</summary>
    public VhostUserFrontend Frontend { get; }

    /// <summary>The guest RAM (owned by this device).</summary>
    public GuestRam Ram => Device.Ram;

    /// <summary>The virtio features the back-end offered.</summary>
    public ulong OfferedFeatures => Device.OfferedFeatures;

    /// <summary>The virtio features acked with SET_FEATURES.</summary>
    public ulong AckedFeatures => Frontend.AckedFeatures;

    /// <summary>The protocol features the back-end offered (none without VHOST_USER_F_PROTOCOL_FEATURES).</summary>
    public VhostUserProtocolFeatures OfferedProtocolFeatures { get; private set; }

    /// <summary>The protocol features acked.</summary>
    public VhostUserProtocolFeatures AckedProtocolFeatures => Frontend.AckedProtocolFeatures;

    /// <summary>The back-end's queue count (GET_QUEUE_NUM), when MQ was negotiated.</summary>
    public int? BackendQueueCount { get; private set; }

    /// <summary>The back-end's memory slots (GET_MAX_MEM_SLOTS), when CONFIGURE_MEM_SLOTS was negotiated.</summary>
    public int? MaxMemorySlots { get; private set; }

    /// <summary>Whether EVENT_IDX is in use on the rings.</summary>
    public bool EventIdx => Device.EventIndex;

    /// <summary>The queues, by index.</summary>
    public IReadOnlyList<VmmQueue> Queues => Device.Queues;

    /// <summary>Connects to <paramref name="socketPath"/> and starts the device.</summary>
    /// <param name="socketPath">The back-end's socket.</param>
    /// <param name="options">What to negotiate and lay out.</param>
    /// <param name="connectTimeout">How long to retry the connection. Default 5 s.</param>
    /// <returns>The running device.</returns>
    /// <exception cref="VhostUserException">The connection or a message failed.</exception>
    /// <exception cref="NotSupportedException">The back-end lacks a required feature or enough queues.</exception>
    public static VmmDevice Connect(string socketPath, VmmDeviceOptions options, TimeSpan? connectTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        VhostUserFrontend frontend = VhostUserFrontend.Connect(socketPath, connectTimeout ?? TimeSpan.FromSeconds(5));
        try
        {
            return Start(frontend, options);
        }
        catch
        {
            frontend.Dispose();
            throw;
        }
    }

    /// <summary>Runs the start-up sequence on a connected front-end, which the device owns on success.</summary>
    /// <param name="frontend">A fresh front-end (no message sent yet).</param>
    /// <param name="options">What to negotiate and lay out.</param>
    /// <returns>The running device.</returns>
    /// <exception cref="VhostUserException">A message failed.</exception>
    /// <exception cref="NotSupportedException">The back-end lacks a required feature or enough queues.</exception>
    /// <remarks>
    /// The steps every transport shares (features, owner, memory table, rings) are
    /// <see cref="VmmVhostDevice"/>'s, through <see cref="IVhostBackend"/>; this layer adds what
    /// only vhost-user has: protocol features, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS and SET_VRING_ENABLE.
    /// </remarks>
    public static VmmDevice Start(VhostUserFrontend frontend, VmmDeviceOptions options)
    {
        ArgumentNullException.ThrowIfNull(frontend);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        GuestRam ram = GuestRam.Create(options.MemorySize);
        var device = new VmmVhostDevice(frontend, ram, VringAddressKind.FrontendVirtual);
        try
        {
            ulong offered = device.GetFeatures();
            if ((offered & options.RequiredFeatures) != options.RequiredFeatures)
            {
                throw new NotSupportedException($"the back-end offers features 0x{offered:x}, without the required 0x{options.RequiredFeatures & ~offered:x}");
            }

            ulong wanted = options.Features | (ulong)VirtioFeatures.Version1 | (ulong)VhostUserVirtioFeatures.ProtocolFeatures;
            if (options.EventIdx)
            {
                wanted |= (ulong)VirtioFeatures.RingEventIndex;
            }

            if (options.MaxIndirectEntries > 0)
            {
                wanted |= IndirectDescriptorsFeature;
            }

            VhostUserProtocolFeatures offeredProtocol = VhostUserProtocolFeatures.None;
            int? queueNum = null;
            int? slots = null;
            if ((offered & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) != 0)
            {
                offeredProtocol = frontend.GetProtocolFeatures();
                frontend.SetProtocolFeatures(offeredProtocol & options.ProtocolFeatures);
                if ((frontend.AckedProtocolFeatures & VhostUserProtocolFeatures.MQ) != 0)
                {
                    queueNum = frontend.GetQueueNum();
                }

                if ((frontend.AckedProtocolFeatures & VhostUserProtocolFeatures.ConfigureMemorySlots) != 0)
                {
                    slots = frontend.GetMaxMemorySlots();
                }
            }

            if (queueNum is { } n && n < options.QueueCount)
            {
                throw new NotSupportedException($"the back-end has {n} queues, {options.QueueCount} requested");
            }

            device.SetOwner();
            const ulong packed = (ulong)VirtioFeatures.RingPacked;
            ulong acked = device.SetFeatures((wanted | options.RequiredFeatures) & ~packed, options.RequiredFeatures & ~packed);
            device.SetMemoryTable();
            for (int i = 0; i < options.QueueCount; i++)
            {
                device.AddQueue(options.QueueSize, options.QueueSize, options.MaxIndirectEntries);
            }

            if ((acked & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) != 0)
            {
                for (int i = 0; i < options.QueueCount; i++)
                {
                    frontend.SetVringEnable(i, true);
                }
            }

            return new VmmDevice(frontend, device)
            {
                OfferedProtocolFeatures = offeredProtocol,
                BackendQueueCount = queueNum,
                MaxMemorySlots = slots,
            };
        }
        catch
        {
            device.Dispose();
            ram.Dispose();
            throw;
        }
    }

    /// <summary>The front-end's user address of a guest physical address (what vhost-user ring addresses carry).</summary>
    /// <param name="ram">The RAM.</param>
    /// <param name="guestPhysicalAddress">The address.</param>
    /// <returns>The user address.</returns>
    /// <exception cref="ArgumentException">The address is not in the RAM.</exception>
    public static ulong UserAddressOf(GuestRam ram, ulong guestPhysicalAddress) => VmmVhostDevice.UserAddressOf(ram, guestPhysicalAddress);

    /// <summary>Reads the device's config space (GET_CONFIG; needs the CONFIG protocol feature).</summary>
    /// <param name="size">Bytes from offset 0.</param>
    /// <returns>The bytes.</returns>
    public byte[] GetConfig(uint size) => Frontend.GetConfig(0, size, VhostUserConfigFlags.None);

    /// <summary>Stops the rings (GET_VRING_BASE on each, which a back-end treats as "stop").</summary>
    /// <returns>The last avail index the back-end reports for each queue.</returns>
    /// <exception cref="VhostUserException">A message failed.</exception>
    public uint[] Stop() => Device.Stop();

    /// <summary>Closes the connection, the eventfds and the guest RAM.</summary>
    public void Dispose()
    {
        Frontend.Dispose();
        Device.Dispose();
        Device.Ram.Dispose();
    }
}
