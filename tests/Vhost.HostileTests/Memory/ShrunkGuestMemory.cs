using Vhost.User;
using Vhost.User.Messages;
using Vhost.Vmm;
using VhostUserBackend.Testing;
using VhostUserBackend.Virtio;

namespace Vhost.HostileTests.Memory;

/// <summary>
/// The attack on an unsealable guest-RAM file: a well-formed front-end whose RAM is a memfd sealed
/// with <c>F_SEAL_SEAL</c> alone (so the daemon cannot add <c>F_SEAL_SHRINK</c>, as with
/// <c>memory-backend-file</c> on tmpfs or hugetlbfs), one request published on queue 0, the file
/// truncated to 0 bytes, then the kick: every access of the daemon to that RAM now faults (SIGBUS).
/// </summary>
internal sealed class ShrunkGuestMemory : IDisposable
{
    private ShrunkGuestMemory(VhostUserFrontend frontend, GuestRam ram, VmmVhostDevice device, EventFd error)
    {
        Frontend = frontend;
        Ram = ram;
        Device = device;
        Error = error;
    }

    /// <summary>The front-end.</summary>
    public VhostUserFrontend Frontend { get; }

    /// <summary>The RAM (dead to this process too after <see cref="TruncateAndKick"/>: do not touch it).</summary>
    public GuestRam Ram { get; }

    /// <summary>The device.</summary>
    public VmmVhostDevice Device { get; }

    /// <summary>Queue 0's error eventfd (SET_VRING_ERR).</summary>
    public EventFd Error { get; }

    /// <summary>The size of the guest RAM.</summary>
    public const long RamSize = 2 << 20;

    /// <summary>Connects, starts one queue on unsealable RAM and publishes one request (64 readable, 64 writable bytes) without kicking.</summary>
    /// <param name="socketPath">The daemon.</param>
    /// <param name="bufferOffset">Where the request's buffers go (the rings are at the start of the RAM): 0 for right after the rings.</param>
    /// <returns>The session.</returns>
    public static ShrunkGuestMemory Start(string socketPath, ulong bufferOffset = 0)
    {
        GuestRam ram = GuestRam.Create(RamSize);
        Fd.AddSeals(ram.FileHandle, Interop.F_SEAL_SEAL);
        VhostUserFrontend frontend = VhostUserFrontend.Connect(socketPath, TimeSpan.FromSeconds(5));
        var device = new VmmVhostDevice(frontend, ram, VringAddressKind.FrontendVirtual);
        var error = new EventFd();
        var session = new ShrunkGuestMemory(frontend, ram, device, error);
        try
        {
            ulong offered = device.GetFeatures();
            frontend.SetProtocolFeatures(frontend.GetProtocolFeatures() & VhostUserProtocolFeatures.ReplyAck);
            device.SetOwner();
            device.SetFeatures(offered & (VmmVhostDevice.Version1Feature | (ulong)VhostUserVirtioFeatures.ProtocolFeatures));
            device.SetMemoryTable();
            VmmQueue q = device.AddQueue(64);
            frontend.SetVringError(0, error);
            frontend.SetVringEnable(0, true);

            // A GET_ID-shaped request for blk, an echo request for the echo device: 16 + 48
            // readable bytes, 64 writable; the daemon must not get to act on it.
            if (bufferOffset != 0)
            {
                ram.Allocate(1, bufferOffset);
            }

            ulong input = ram.Allocate(64, 16);
            ulong output = ram.Allocate(64, 16);
            ram.GetSpan(input, 64).Clear();
            ram.GetSpan(input, 4)[0] = 8;
            q.Driver.AddBuffers([new VirtqBuffer(input, 64, false), new VirtqBuffer(output, 64, true)]);
            q.Driver.Publish();
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Shrinks the RAM file under the daemon (to 0 bytes by default) and kicks queue 0.</summary>
    /// <param name="size">The new size of the file.</param>
    public void TruncateAndKick(long size = 0)
    {
        Fd.Truncate(Ram.FileHandle, size);
        Device.Queues[0].Kick.Signal();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Frontend.Dispose();
        Device.Dispose();
        Ram.Dispose();
        Error.Dispose();
    }
}
