namespace VhostProbe;

/// <summary>The <c>net</c> subcommand's counts.</summary>
/// <param name="Sent">Frames queued on TX.</param>
/// <param name="Received">Frames that came back on RX.</param>
/// <param name="Matching">Received frames whose payload equals a sent frame's.</param>
/// <param name="MacSwapped">Received frames whose source and destination MACs were swapped.</param>
public readonly record struct NetResult(long Sent, long Received, long Matching, long MacSwapped);
