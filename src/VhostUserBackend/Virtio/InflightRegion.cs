using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace VhostUserBackend.Virtio;

/// <summary>
/// The shared inflight I/O region (vhost-user INFLIGHT_SHMFD) in one of the spec's two layouts:
/// split rings, per queue a <see cref="VhostUserInflightSplitQueue"/> header followed by one
/// <see cref="VhostUserInflightSplitDescriptor"/> per descriptor; packed rings (VIRTIO_F_RING_PACKED
/// acked when the region is made or handed back), a <see cref="VhostUserInflightPackedQueue"/>
/// header followed by one <see cref="VhostUserInflightPackedDescriptor"/> per descriptor. Each
/// queue starts on a 64-byte boundary (the stride libvhost-user and DPDK use, so a region survives
/// a switch of back-end implementation).
/// </summary>
/// <remarks>
/// The front-end keeps the region across back-end restarts and controls its contents: every
/// field is read once and validated before use (<see cref="InflightTracker"/>). Owned by the
/// daemon's control thread; worker threads use it only through trackers while they are not paused.
/// </remarks>
internal sealed unsafe class InflightRegion : IDisposable
{
    /// <summary>Queue regions start on this boundary.</summary>
    public const int QueueAlignment = 64;

    private readonly SafeMmapHandle _mapping;

    private InflightRegion(SafeMmapHandle mapping, ushort queueCount, ushort queueSize, bool packed)
    {
        _mapping = mapping;
        QueueCount = queueCount;
        QueueSize = queueSize;
        IsPacked = packed;
    }

    /// <summary>Whether the region has the packed-ring layout (else the split one).</summary>
    public bool IsPacked { get; }

    /// <summary>The number of queues the region covers.</summary>
    public ushort QueueCount { get; }

    /// <summary>The number of descriptor entries per queue.</summary>
    public ushort QueueSize { get; }

    /// <summary>The bytes one queue occupies (header, descriptors, padding to <see cref="QueueAlignment"/>).</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <param name="packed">The packed layout (32-byte header and entries; DPDK's size, 29 header bytes before the padding, rounded up).</param>
    /// <returns>The stride.</returns>
    public static ulong QueueStride(ushort queueSize, bool packed = false)
        => ((ulong)(packed ? VhostUserInflightPackedQueue.RegionSize(queueSize) - 3 : VhostUserInflightSplitQueue.RegionSize(queueSize) - 14) + QueueAlignment - 1) & ~(ulong)(QueueAlignment - 1);

    /// <summary>The size of a region for <paramref name="queueCount"/> queues of <paramref name="queueSize"/>.</summary>
    /// <param name="queueCount">Queues.</param>
    /// <param name="queueSize">Descriptors per queue.</param>
    /// <param name="packed">The packed layout.</param>
    /// <returns>Bytes.</returns>
    public static ulong RegionSize(ushort queueCount, ushort queueSize, bool packed = false) => QueueStride(queueSize, packed) * queueCount;

    /// <summary>Allocates a zeroed region in a new memfd and writes every queue header (GET_INFLIGHT_FD).</summary>
    /// <param name="queueCount">Queues.</param>
    /// <param name="queueSize">Descriptors per queue.</param>
    /// <param name="features">The acked virtio features, recorded in each header.</param>
    /// <param name="fd">The memfd to send to the front-end (the caller owns it).</param>
    /// <param name="packed">The packed layout: each queue's header is left at version 0 ("not set up"), and the ring's first start lays the queue out from its base (<see cref="PackedInflightTracker"/>).</param>
    /// <returns>The mapped region.</returns>
    public static InflightRegion Create(ushort queueCount, ushort queueSize, ulong features, out SafeFileHandle fd, bool packed = false)
    {
        ulong size = RegionSize(queueCount, queueSize, packed);
        fd = Fd.CreateMemFd("vhost-inflight", (long)size);
        try
        {
            // The front-end gets this fd: it must not be able to shrink (SIGBUS here) or resize it.
            Fd.AddSeals(fd, Interop.F_SEAL_SHRINK | Interop.F_SEAL_GROW | Interop.F_SEAL_SEAL);
            var region = new InflightRegion(SafeMmapHandle.MapShared(fd, 0, size), queueCount, queueSize, packed);
            for (int q = 0; q < queueCount; q++)
            {
                if (packed)
                {
                    // SAFETY: as below; the packed header is 32 bytes.
                    var packedHeader = (VhostUserInflightPackedQueue*)region.QueueBase(q);
                    packedHeader->Features = features;
                    packedHeader->DescriptorCount = queueSize;
                    continue;
                }

                // SAFETY: the queue header lies inside the mapping just made (q < queueCount).
                var header = (VhostUserInflightSplitQueue*)region.QueueBase(q);
                header->Features = features;
                header->DescriptorCount = queueSize;
                header->Version = VhostUserInflightSplitQueue.CurrentVersion;
            }

            return region;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Maps a region the front-end hands back (SET_INFLIGHT_FD) after checking its size.</summary>
    /// <param name="fd">The region's fd (not taken over).</param>
    /// <param name="inflight">The description.</param>
    /// <param name="packed">The packed layout (VIRTIO_F_RING_PACKED acked).</param>
    /// <returns>The mapped region.</returns>
    /// <exception cref="VhostUserException">The size does not fit the queue count and size, or the fd is too small.</exception>
    public static InflightRegion Map(SafeFileHandle fd, in VhostUserInflight inflight, bool packed = false)
    {
        ulong needed = RegionSize(inflight.QueueCount, inflight.QueueSize, packed);
        if (inflight.MmapSize < needed || inflight.MmapSize > VhostUserLimits.MaxInflightMmapSize)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"inflight region of 0x{inflight.MmapSize:x} bytes does not hold {inflight.QueueCount} queues of {inflight.QueueSize} in the {(packed ? "packed" : "split")} layout (0x{needed:x} bytes, at most 0x{VhostUserLimits.MaxInflightMmapSize:x})");
        }

        if (inflight.MmapOffset > long.MaxValue)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"inflight region offset 0x{inflight.MmapOffset:x} is too large");
        }

        try
        {
            return new InflightRegion(SafeMmapHandle.MapShared(fd, (long)inflight.MmapOffset, inflight.MmapSize), inflight.QueueCount, inflight.QueueSize, packed);
        }
        catch (ArgumentException e)
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"cannot map the inflight region: {e.Message}", e);
        }
    }

    /// <summary>The first byte of queue <paramref name="queueIndex"/>'s region.</summary>
    /// <param name="queueIndex">The queue (below <see cref="QueueCount"/>).</param>
    /// <returns>A pointer valid until <see cref="Dispose"/>.</returns>
    public byte* QueueBase(int queueIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(queueIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(queueIndex, (int)QueueCount);
        ObjectDisposedException.ThrowIf(_mapping.IsClosed, this);
        return _mapping.Pointer + ((ulong)queueIndex * QueueStride(QueueSize, IsPacked));
    }

    /// <summary>Unmaps the region.</summary>
    public void Dispose() => _mapping.Dispose();
}
