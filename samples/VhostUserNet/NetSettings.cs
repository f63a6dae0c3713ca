using System.Net;
using System.Net.NetworkInformation;

namespace VhostUserNet;

/// <summary>What every port of one vhost-user-net process shares (from the command line).</summary>
internal sealed record NetSettings
{
    /// <summary>The default responder address: TEST-NET-1 (RFC 5737), which no real network routes.</summary>
    public static readonly IPAddress DefaultIP = IPAddress.Parse("192.0.2.1");

    /// <summary>The default responder / source MAC: locally administered, unicast.</summary>
    public static readonly PhysicalAddress DefaultMac = PhysicalAddress.Parse("02:00:00:00:00:01");

    /// <summary>The mode.</summary>
    public NetMode Mode { get; init; } = NetMode.Switch;

    /// <summary>The responder's (and the source's frames') MAC.</summary>
    public PhysicalAddress Mac { get; init; } = DefaultMac;

    /// <summary>The responder's IPv4 address.</summary>
    public IPAddress IP { get; init; } = DefaultIP;

    /// <summary>RX/TX queue pairs per port.</summary>
    public int QueuePairs { get; init; } = 1;

    /// <summary>The polling window (zero: no polling).</summary>
    public TimeSpan Poll { get; init; }

    /// <summary>Frame bytes the source writes (without the virtio-net header).</summary>
    public int FrameSize { get; init; } = 64;

    /// <summary>Offer postcopy live migration (<see cref="VhostUserBackend.VhostUserDaemonOptions.Postcopy"/>) on every port.</summary>
    public bool Postcopy { get; init; }

    /// <summary>The MTU in config space.</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>The largest queue size offered.</summary>
    public ushort MaxQueueSize { get; init; } = 1024;
}
