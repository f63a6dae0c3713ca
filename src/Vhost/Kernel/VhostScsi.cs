using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vhost.Kernel;

/// <summary>
/// The in-kernel virtio-scsi data path, <c>/dev/vhost-scsi</c> (LIO target): after the rings are
/// set up, <see cref="SetEndpoint"/> binds the device to a configured target portal group.
/// </summary>
public sealed class VhostScsi : VhostKernelBackend
{
    /// <summary>The default device node.</summary>
    public const string DefaultPath = "/dev/vhost-scsi";

    /// <summary>The longest target WWPN, in bytes (the UAPI field holds 224 bytes including the terminating NUL).</summary>
    public const int MaxWwpnLength = Interop.vhost_scsi_target.WwpnLength - 1;

    /// <summary>Wraps an open <c>/dev/vhost-scsi</c> fd, taking ownership of it.</summary>
    /// <param name="device">The device fd.</param>
    /// <exception cref="ArgumentException">The handle is closed or invalid.</exception>
    public VhostScsi(SafeFileHandle device)
        : base(device, "vhost-scsi")
    {
    }

    /// <summary>Opens <paramref name="path"/>.</summary>
    /// <param name="path">The device node.</param>
    /// <returns>The device.</returns>
    /// <exception cref="VhostException">The open failed (<c>ENOENT</c>: the <c>vhost_scsi</c> module is not loaded).</exception>
    public static VhostScsi Open(string path = DefaultPath) => new(OpenDevice(path, "vhost_scsi"));

    /// <summary>Binds the device to a target (<c>VHOST_SCSI_SET_ENDPOINT</c>).</summary>
    /// <param name="wwpn">The target's world wide port name, as configured in LIO (ASCII, at most <see cref="MaxWwpnLength"/> bytes).</param>
    /// <param name="tpgt">The target portal group tag.</param>
    /// <exception cref="ArgumentException">The WWPN is empty, not ASCII, contains NUL or is too long.</exception>
    /// <exception cref="VhostException">The kernel refused (<c>ENODEV</c> when no such target exists, <c>EEXIST</c> when already bound).</exception>
    public void SetEndpoint(string wwpn, ushort tpgt) => Endpoint(VhostIoctls.VHOST_SCSI_SET_ENDPOINT, nameof(VhostIoctls.VHOST_SCSI_SET_ENDPOINT), wwpn, tpgt);

    /// <summary>Unbinds the device from a target (<c>VHOST_SCSI_CLEAR_ENDPOINT</c>).</summary>
    /// <param name="wwpn">The target's WWPN, as given to <see cref="SetEndpoint"/>.</param>
    /// <param name="tpgt">The target portal group tag.</param>
    /// <exception cref="ArgumentException">The WWPN is empty, not ASCII, contains NUL or is too long.</exception>
    /// <exception cref="VhostException">The kernel refused.</exception>
    public void ClearEndpoint(string wwpn, ushort tpgt) => Endpoint(VhostIoctls.VHOST_SCSI_CLEAR_ENDPOINT, nameof(VhostIoctls.VHOST_SCSI_CLEAR_ENDPOINT), wwpn, tpgt);

    /// <summary>Reads the vhost-scsi ABI version (<c>VHOST_SCSI_GET_ABI_VERSION</c>).</summary>
    /// <returns>The ABI version (1 since 2013).</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public int GetAbiVersion()
    {
        return IoctlGet<int>(VhostIoctls.VHOST_SCSI_GET_ABI_VERSION, nameof(VhostIoctls.VHOST_SCSI_GET_ABI_VERSION));
    }

    /// <summary>Sets or clears the "events missed" flag (<c>VHOST_SCSI_SET_EVENTS_MISSED</c>).</summary>
    /// <param name="missed">The flag.</param>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public void SetEventsMissed(bool missed)
    {
        uint value = missed ? 1u : 0u;
        Ioctl(VhostIoctls.VHOST_SCSI_SET_EVENTS_MISSED, ref value, nameof(VhostIoctls.VHOST_SCSI_SET_EVENTS_MISSED));
    }

    /// <summary>Reads the "events missed" flag (<c>VHOST_SCSI_GET_EVENTS_MISSED</c>): events were dropped for lack of event-queue buffers.</summary>
    /// <returns>The flag.</returns>
    /// <exception cref="VhostException">The ioctl failed.</exception>
    public bool GetEventsMissed()
    {
        return IoctlGet<uint>(VhostIoctls.VHOST_SCSI_GET_EVENTS_MISSED, nameof(VhostIoctls.VHOST_SCSI_GET_EVENTS_MISSED)) != 0;
    }

    /// <summary>Builds the <c>vhost_scsi_target</c> for a WWPN (internal for tests).</summary>
    internal static unsafe Interop.vhost_scsi_target BuildTarget(string wwpn, ushort tpgt)
    {
        ArgumentException.ThrowIfNullOrEmpty(wwpn);
        foreach (char c in wwpn)
        {
            if (c is '\0' or > (char)0x7F)
            {
                throw new ArgumentException("a WWPN is ASCII without NUL characters", nameof(wwpn));
            }
        }

        if (wwpn.Length > MaxWwpnLength)
        {
            throw new ArgumentException($"a WWPN has at most {MaxWwpnLength} characters", nameof(wwpn));
        }

        var target = new Interop.vhost_scsi_target { vhost_tpgt = tpgt };
        // SAFETY: vhost_wwpn is a fixed 224-byte buffer inside the local; the string is at most 223 ASCII bytes.
        Encoding.ASCII.GetBytes(wwpn, new Span<byte>(target.vhost_wwpn, Interop.vhost_scsi_target.WwpnLength));
        return target;
    }

    private void Endpoint(uint request, string name, string wwpn, ushort tpgt)
    {
        Interop.vhost_scsi_target target = BuildTarget(wwpn, tpgt);
        Ioctl(request, ref target, name);
    }
}
