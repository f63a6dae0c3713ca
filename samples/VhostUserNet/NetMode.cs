namespace VhostUserNet;

/// <summary>What the daemon does with the frames its ports send.</summary>
internal enum NetMode
{
    /// <summary>A MAC-learning switch between the ports: unicast to the learned port, broadcast and unknown destinations flooded.</summary>
    Switch,

    /// <summary>Answers ARP requests for its IPv4 address and ICMP echo requests to it, on each port.</summary>
    Responder,

    /// <summary>Completes every transmitted frame and drops it; never fills RX buffers.</summary>
    Sink,

    /// <summary>Fills every RX buffer the driver offers with a fixed-size broadcast frame; drops what is transmitted.</summary>
    Source,
}
