using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vhost.KernelTests;

/// <summary>A tap interface created through <c>/dev/net/tun</c> with a virtio-net header, configured with ioctls (no external tools).</summary>
internal sealed unsafe class Tap : IDisposable
{
    private const uint TUNSETIFF = 0x400454CA;       // _IOW('T', 202, int)
    private const uint TUNSETVNETHDRSZ = 0x400454D8; // _IOW('T', 216, int)
    private const uint SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916, SIOCSIFNETMASK = 0x891C;
    private const short IFF_UP = 0x1, IFF_TAP = 0x2, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    private const int IfreqSize = 40;

    private Tap(SafeFileHandle handle, string name)
    {
        Handle = handle;
        Name = name;
    }

    public SafeFileHandle Handle { get; }

    public string Name { get; }

    /// <summary>The 12-byte <c>virtio_net_hdr_mrg_rxbuf</c> that VERSION_1 implies.</summary>
    public const int VnetHeaderSize = 12;

    public static Tap Create(string name)
    {
        SafeFileHandle fd = Fd.Open(KernelDevice.Tun, global::Interop.O_RDWR);
        try
        {
            byte* ifr = stackalloc byte[IfreqSize];
            Fill(ifr, name);
            *(short*)(ifr + 16) = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
            Fd.Ioctl(fd, TUNSETIFF, ifr, "TUNSETIFF");
            int hdr = VnetHeaderSize;
            Fd.Ioctl(fd, TUNSETVNETHDRSZ, &hdr, "TUNSETVNETHDRSZ");
            return new Tap(fd, name);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Disables IPv6 (no MLD/RS noise in the RX ring), sets 10.99.0.1/24 and brings the interface up.</summary>
    public void Up(IPAddress address, IPAddress mask)
    {
        string v6 = $"/proc/sys/net/ipv6/conf/{Name}/disable_ipv6";
        if (File.Exists(v6))
        {
            File.WriteAllText(v6, "1");
        }

        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        byte* ifr = stackalloc byte[IfreqSize];
        SetAddress(s, ifr, SIOCSIFADDR, address);
        SetAddress(s, ifr, SIOCSIFNETMASK, mask);
        Fill(ifr, Name);
        Fd.Ioctl(s.SafeHandle, SIOCGIFFLAGS, ifr, "SIOCGIFFLAGS");
        *(short*)(ifr + 16) |= IFF_UP;
        Fd.Ioctl(s.SafeHandle, SIOCSIFFLAGS, ifr, "SIOCSIFFLAGS");
    }

    public long ReadStatistic(string counter) => long.Parse(File.ReadAllText($"/sys/class/net/{Name}/statistics/{counter}").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose() => Handle.Dispose();

    private void SetAddress(Socket s, byte* ifr, uint request, IPAddress address)
    {
        Fill(ifr, Name);
        *(ushort*)(ifr + 16) = (ushort)AddressFamily.InterNetwork;
        address.GetAddressBytes().CopyTo(new Span<byte>(ifr + 20, 4));
        Fd.Ioctl(s.SafeHandle, request, ifr, request == SIOCSIFADDR ? "SIOCSIFADDR" : "SIOCSIFNETMASK");
    }

    private static void Fill(byte* ifr, string name)
    {
        new Span<byte>(ifr, IfreqSize).Clear();
        Encoding.ASCII.GetBytes(name, new Span<byte>(ifr, 15));
    }
}
