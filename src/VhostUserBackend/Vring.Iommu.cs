using Vhost;
using Vhost.User.Messages;
using VhostUserBackend.Iommu;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBackend;

/// <summary>
/// A ring under VIRTIO_F_ACCESS_PLATFORM: its SET_VRING_ADDR addresses are IOVAs, translated
/// through the connection's IOTLB to front-end user addresses and then to guest physical ones.
/// A ring whose areas miss in the IOTLB when it starts asks the front-end (IOTLB miss on the
/// back-end channel, from the control thread, without waiting) and stays started but not ready
/// until an update makes every area translate (<see cref="CompletePendingStart"/>).
/// </summary>
public sealed partial class Vring
{
    private bool _startPending;
    private InflightRegion? _pendingInflight;

    /// <summary>The connection's IOTLB while VIRTIO_F_ACCESS_PLATFORM is negotiated, else null. Set on the control thread while the worker is paused; a ring picks it up at its next start.</summary>
    internal Iotlb? Iotlb { get; set; }

    /// <summary>Whether the ring is started and waits for IOTLB updates that translate its areas.</summary>
    internal bool IsStartPending => _startPending;

    /// <summary>The access the device needs to the descriptor area: read for a split ring, read and write for a packed one (used descriptors are written back).</summary>
    private VhostIotlbAccess DescriptorTableAccess => Queue is PackedQueue ? VhostIotlbAccess.ReadWrite : VhostIotlbAccess.ReadOnly;

    /// <summary>
    /// Whether every area of the ring has an IOTLB translation with the access it needs; for each
    /// area that misses, an IOTLB miss goes to the front-end. An area that translates but is denied
    /// or outside guest memory counts as translating: mapping it then fails with the reason.
    /// </summary>
    private bool AreasTranslate(Virtqueue q)
    {
        Iotlb iotlb = Iotlb!;
        bool all = true;
        all &= AreaTranslates(iotlb, _descriptorUserAddress, q.DescriptorTableSize, DescriptorTableAccess);
        all &= AreaTranslates(iotlb, _availUserAddress, q.DriverAreaSize, VhostIotlbAccess.ReadOnly);
        all &= AreaTranslates(iotlb, _usedUserAddress, q.DeviceAreaSize, VhostIotlbAccess.WriteOnly);
        return all;
    }

    private static bool AreaTranslates(Iotlb iotlb, ulong iova, ulong length, VhostIotlbAccess access)
    {
        if (iotlb.TryTranslateArea(iova, length, access, out _, out ulong missing) != Iotlb.Fault.Miss)
        {
            return true;
        }

        try
        {
            iotlb.SendMiss(missing, write: (access & VhostIotlbAccess.WriteOnly) != 0);
        }
        catch (VirtqueueException)
        {
            // No channel to ask on (or it broke): the ring keeps waiting; a later update still completes it.
        }

        return false;
    }

    /// <summary>Translates a ring area (a front-end user address, or an IOVA with an IOTLB) to a guest physical address inside one region.</summary>
    private bool TryTranslateArea(GuestMemory memory, ulong address, ulong length, VhostIotlbAccess access, out ulong gpa, out string? why)
    {
        gpa = 0;
        ulong user = address;
        if (Iotlb is { } iotlb)
        {
            Iotlb.Fault fault = iotlb.TryTranslateArea(address, length, access, out user, out ulong at);
            if (fault != Iotlb.Fault.None)
            {
                why = $"does not translate: {Iotlb.Error(fault, at, (access & VhostIotlbAccess.WriteOnly) != 0).Message}";
                return false;
            }
        }

        if (!memory.TryTranslateUserAddress(user, length, out gpa))
        {
            why = Iotlb is null ? "is not in guest memory" : $"translates to front-end address 0x{user:x}, which is not in one guest memory region";
            return false;
        }

        why = null;
        return true;
    }

    /// <summary>
    /// An IOTLB update arrived for a ring whose start waits for it (worker paused): when every
    /// area translates now, the start completes (inflight recovery included) and the ring is kicked.
    /// </summary>
    private RebindResult CompletePendingStart(GuestMemory memory, out VhostException? lost)
    {
        lost = null;
        Virtqueue q = Queue;
        if (!AreasTranslate(q))
        {
            return RebindResult.StillUnmapped;
        }

        InflightRegion? region = _pendingInflight;
        _startPending = false;
        _pendingInflight = null;
        try
        {
            Activate(q, memory, region, abandonedWait: null);
        }
        catch (VhostException e)
        {
            lost = e;
            return RebindResult.StillUnmapped;
        }

        RequestProcessing();
        return RebindResult.Regained;
    }
}
