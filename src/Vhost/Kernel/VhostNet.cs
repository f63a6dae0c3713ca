using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vhost.Kernel;

/// <summary>
/// The in-kernel virtio-net data path, <c>/dev/vhost-net</c>: queue 0 is RX, queue 1 is TX (per
/// queue pair), and <see cref="SetBackend"/> attaches a tap (or macvtap, or packet socket) fd that
/// the kernel moves frames between and the rings.
/// </summary>
/// <example>
/// <code>
/// using var net = VhostNet.Open();
/// net.SetOwner();
/// net.SetFeatures(net.GetFeatures() &amp; wanted);
/// net.SetMemoryTable(regions);
/// // per queue: SetVringNum, SetVringBase, SetVringAddress, SetVringKick, SetVringCall
/// net.SetBackend(0, tap); net.SetBackend(1, tap);
/// </code>
/// </example>
/// <remarks>
/// With VIRTIO_F_VERSION_1 every frame starts with the 12-byte <c>virtio_net_hdr_mrg_rxbuf</c>:
/// set the tap's header size with <c>TUNSETVNETHDRSZ 12</c> (<c>IFF_VNET_HDR</c>).
/// </remarks>
public sealed class VhostNet : VhostKernelBackend
{
    /// <summary>The default device node.</summary>
    public const string DefaultPath = "/dev/vhost-net";

    /// <summary>Wraps an open <c>/dev/vhost-net</c> fd, taking ownership of it.</summary>
    /// <param name="device">The device fd.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public VhostNet(SafeFileHandle device)
        : base(device, "vhost-net")
    {
    }

    /// <summary>Opens <paramref name="path"/>.</summary>
    /// <param name="path">The device node.</param>
    /// <returns>The device.</returns>
    /// <exception cref="VhostException">The open failed (<c>ENOENT</c>: the <c>vhost_net</c> module is not loaded).</exception>
    public static VhostNet Open(string path = DefaultPath) => new(OpenDevice(path, "vhost_net"));

    /// <summary>Attaches a backend fd to a queue, or detaches it (<c>VHOST_NET_SET_BACKEND</c>).</summary>
    /// <param name="queueIndex">The queue (0 RX, 1 TX, ...).</param>
    /// <param name="backend">A tap/macvtap fd or a packet socket; <see langword="null"/> detaches (stops the queue). Stays owned by the caller.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative queue index.</exception>
    /// <exception cref="VhostException">The kernel refused (<c>ENOTSOCK</c> for an fd that is not a tap or socket, <c>EFAULT</c> when the rings are not set up, <c>ENOBUFS</c> for a queue that does not exist).</exception>
    public void SetBackend(int queueIndex, SafeHandle? backend)
        => SetVringFile(VhostIoctls.VHOST_NET_SET_BACKEND, nameof(VhostIoctls.VHOST_NET_SET_BACKEND), queueIndex, backend);
}
