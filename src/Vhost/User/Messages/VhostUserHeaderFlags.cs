namespace Vhost.User.Messages;

/// <summary>The <c>flags</c> word of the vhost-user message header.</summary>
[Flags]
internal enum VhostUserHeaderFlags : uint
{
    /// <summary>No flag (not a valid header by itself: the version is missing).</summary>
    None = 0,
    /// <summary>Protocol version 1 in bits 0-1, the only version defined.</summary>
    Version1 = 0x1,
    /// <summary>The version field mask (bits 0-1).</summary>
    VersionMask = 0x3,
    /// <summary>Set on every reply.</summary>
    Reply = 0x4,
    /// <summary>The sender wants a u64 acknowledgement (<c>REPLY_ACK</c> protocol feature).</summary>
    NeedReply = 0x8,
    /// <summary>Every bit the protocol defines; any other bit is reserved and invalid.</summary>
    AllKnown = VersionMask | Reply | NeedReply,
}
