using System.Net.Sockets;

namespace VhostUserNet;

/// <summary>
/// The ports of one vhost-user-net process and what they share: the mode, the switch's MAC table,
/// the responder's addresses and the source's frame. Ports deliver frames to each other's
/// <see cref="NetPort.Inbound"/> queues; nothing ever reaches a host interface.
/// </summary>
internal sealed class NetFabric : IDisposable
{
    /// <summary>Creates <paramref name="portCount"/> ports.</summary>
    /// <param name="settings">The shared settings.</param>
    /// <param name="portCount">Ports (one per socket or fd).</param>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public NetFabric(NetSettings settings, int portCount)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThan(portCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(portCount, 64);
        if (settings.IP.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"the responder address must be IPv4, not {settings.IP}", nameof(settings));
        }

        if (settings.Mode == NetMode.Cross && portCount % 2 != 0)
        {
            throw new ArgumentException($"cross mode wires ports in pairs, not {portCount} ports", nameof(portCount));
        }

        byte[] mac = settings.Mac.GetAddressBytes();
        if (mac.Length != 6 || MacTable.IsGroup(mac))
        {
            throw new ArgumentException($"the MAC must be a 6-byte unicast address, not {settings.Mac}", nameof(settings));
        }

        Settings = settings;
        Mac = mac;
        IP = settings.IP.GetAddressBytes();
        Ports = new NetPort[portCount];
        for (int i = 0; i < portCount; i++)
        {
            Ports[i] = new NetPort(this, i);
        }
    }

    /// <summary>The settings.</summary>
    public NetSettings Settings { get; }

    /// <summary>The mode.</summary>
    public NetMode Mode => Settings.Mode;

    /// <summary>The responder's MAC bytes.</summary>
    public byte[] Mac { get; }

    /// <summary>The responder's IPv4 address bytes.</summary>
    public byte[] IP { get; }

    /// <summary>The switch's forwarding table.</summary>
    public MacTable Table { get; } = new();

    /// <summary>The ports, by index.</summary>
    public NetPort[] Ports { get; }

    /// <summary>Disposes the ports (after their daemons stopped).</summary>
    public void Dispose()
    {
        foreach (NetPort p in Ports)
        {
            p.Dispose();
        }
    }
}
