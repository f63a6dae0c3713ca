using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// What a ring or worker does when the front-end shrank a guest-RAM file under the daemon and the
/// fault guard (<see cref="GuestMemoryFaultGuard"/>) replaced a region with zeros: the rings of
/// that guest memory are failed with <see cref="VirtqueueError.GuestMemoryLost"/> (logged once,
/// error eventfd signalled) and the daemon drops the connection.
/// </summary>
internal static class GuestMemoryLoss
{
    /// <summary>The first lost region of <paramref name="memory"/>, or null.</summary>
    internal static GuestMemoryRegion? FindLostRegion(GuestMemory? memory)
    {
        if (memory is null)
        {
            return null;
        }

        foreach (GuestMemoryRegion r in memory.Regions)
        {
            if (r.IsLost)
            {
                return r;
            }
        }

        return null;
    }

    /// <summary>The reason a ring fails with.</summary>
    internal static VirtqueueException Reason(GuestMemoryRegion region)
        => new(
            VirtqueueError.GuestMemoryLost,
            $"guest memory [0x{region.GuestPhysicalAddress:x}, 0x{region.LastGuestPhysicalAddress:x}] is gone: the front-end shrank the file backing it under the daemon (SIGBUS caught; the region now reads as zeros); the connection is dropped");
}
