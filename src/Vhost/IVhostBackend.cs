using System.Runtime.InteropServices;

namespace Vhost;

/// <summary>
/// The operations every vhost frontend offers, whatever the transport (vhost-user socket,
/// in-kernel vhost, vDPA): the rust-vmm <c>VhostBackend</c> trait. Queue indices are zero-based.
/// </summary>
/// <remarks>Implementations are thread-safe: one request is in flight at a time.</remarks>
public interface IVhostBackend
{
    /// <summary>Reads the device's feature bits.</summary>
    /// <returns>The feature bits.</returns>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    ulong GetFeatures();

    /// <summary>Acknowledges feature bits.</summary>
    /// <param name="features">The acked bits (a subset of <see cref="GetFeatures"/>).</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetFeatures(ulong features);

    /// <summary>Claims the device for this frontend.</summary>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetOwner();

    /// <summary>Releases the device (deprecated in vhost-user; prefer a device reset).</summary>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void ResetOwner();

    /// <summary>Describes guest memory to the device, replacing any earlier table.</summary>
    /// <param name="regions">The regions; the fds stay owned by the caller.</param>
    /// <exception cref="ArgumentException">No regions, or more than the transport can carry.</exception>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetMemoryTable(IReadOnlyList<VhostMemoryRegionInfo> regions);

    /// <summary>Sets the dirty-page log.</summary>
    /// <param name="baseAddress">The log base address (kernel vhost); ignored by vhost-user, which maps <paramref name="region"/>.</param>
    /// <param name="region">The shared log memory (required by vhost-user).</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetLogBase(ulong baseAddress, VhostDirtyLogRegion? region);

    /// <summary>Sets the eventfd signalled after the device writes the log.</summary>
    /// <param name="fd">The eventfd; stays owned by the caller.</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetLogFd(SafeHandle fd);

    /// <summary>Sets the size of a queue.</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="num">The number of entries.</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetVringNum(int queueIndex, ushort num);

    /// <summary>Sets the ring addresses of a queue.</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="config">The ring layout.</param>
    /// <exception cref="ArgumentException">The layout is inconsistent (<see cref="VringConfigData.IsValid"/>).</exception>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetVringAddress(int queueIndex, in VringConfigData config);

    /// <summary>Sets where the device resumes processing a queue.</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="baseValue">The next available index (split ring), or the packed-ring state word.</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetVringBase(int queueIndex, uint baseValue);

    /// <summary>Stops a queue and reads where the device stopped.</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>The base value, in the encoding of <see cref="SetVringBase"/>.</returns>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    uint GetVringBase(int queueIndex);

    /// <summary>Sets the kick eventfd of a queue (guest to device notifications).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="fd">The eventfd, or <see langword="null"/> for none (vhost-user: poll the ring).</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetVringKick(int queueIndex, EventFd? fd);

    /// <summary>Sets the call eventfd of a queue (device to guest notifications).</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="fd">The eventfd, or <see langword="null"/> to disable.</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetVringCall(int queueIndex, EventFd? fd);

    /// <summary>Sets the error eventfd of a queue.</summary>
    /// <param name="queueIndex">The queue.</param>
    /// <param name="fd">The eventfd, or <see langword="null"/> to disable.</param>
    /// <exception cref="VhostException">The backend failed or the transport broke.</exception>
    void SetVringError(int queueIndex, EventFd? fd);
}
