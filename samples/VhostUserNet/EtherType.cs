namespace VhostUserNet;

/// <summary>The EtherTypes the sample reads or writes.</summary>
internal enum EtherType : ushort
{
    /// <summary>IPv4.</summary>
    IPv4 = 0x0800,

    /// <summary>ARP.</summary>
    Arp = 0x0806,

    /// <summary>RARP: what a switch broadcasts for a migrated guest (SEND_RARP).</summary>
    Rarp = 0x8035,
}
