using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The 12-byte header in front of every vhost-user message (native byte order).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserHeader
{
    /// <summary>The request code (<see cref="FrontendRequest"/> or <see cref="BackendRequest"/>).</summary>
    public uint Request;

    /// <summary>Version, reply and need-reply flags.</summary>
    public VhostUserHeaderFlags Flags;

    /// <summary>The payload size in bytes that follows the header.</summary>
    public uint Size;

    /// <summary>Creates a header.</summary>
    /// <param name="request">The request code.</param>
    /// <param name="flags">The flags; the version bits are added when missing.</param>
    /// <param name="size">The payload size.</param>
    public VhostUserHeader(uint request, VhostUserHeaderFlags flags, uint size)
    {
        Request = request;
        Flags = (flags & VhostUserHeaderFlags.VersionMask) == 0 ? flags | VhostUserHeaderFlags.Version1 : flags;
        Size = size;
    }

    /// <summary>Whether the reply flag is set.</summary>
    public readonly bool IsReply => (Flags & VhostUserHeaderFlags.Reply) != 0;

    /// <summary>Whether the need-reply flag is set.</summary>
    public readonly bool NeedsReply => (Flags & VhostUserHeaderFlags.NeedReply) != 0;

    /// <summary>Syntax check: version 1, no reserved flag bit, payload within <see cref="VhostUserLimits.MaxPayloadSize"/>.</summary>
    /// <returns><see langword="true"/> when the header is well formed.</returns>
    public readonly bool IsValid()
        => (Flags & VhostUserHeaderFlags.VersionMask) == VhostUserHeaderFlags.Version1
           && (Flags & ~VhostUserHeaderFlags.AllKnown) == 0
           && Size <= VhostUserLimits.MaxPayloadSize;
}
