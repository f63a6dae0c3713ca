namespace VhostUserNet;

/// <summary>What the daemon does with the frames its ports send.</summary>
internal enum NetMode
{
    /// <summary>A MAC-learning switch between the ports: unicast to the learned port, broadcast and unknown destinations flooded.</summary>
    Switch,

    /// <summary>A cross-connect: every frame port <c>2k</c> sends goes to port <c>2k+1</c> and back, no MAC learning (an even port count).</summary>
    Cross,

    /// <summary>Answers ARP requests for its IPv4 address and ICMP echo requests to it, on each port.</summary>
    Responder,

    /// <summary>Completes every transmitted frame, reads its Ethernet and IPv4 headers (as a switch would) and drops it; never fills RX buffers.</summary>
    Sink,

    /// <summary>Fills every RX buffer the driver offers with a fixed-size broadcast IPv4/UDP frame built per packet (<see cref="SourceFrame"/>); drops what is transmitted.</summary>
    Source,
}
