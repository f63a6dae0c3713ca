using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The head of the GET/SET_CONFIG payload (12 bytes); <see cref="Size"/> bytes of config space follow.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserConfigHeader
{
    /// <summary>The offset in the device config space.</summary>
    public uint Offset;

    /// <summary>The number of config bytes that follow (0 in an error reply).</summary>
    public uint Size;

    /// <summary>Flags.</summary>
    public VhostUserConfigFlags Flags;

    /// <summary>Creates the header.</summary>
    /// <param name="offset">The offset.</param>
    /// <param name="size">The size.</param>
    /// <param name="flags">The flags.</param>
    public VhostUserConfigHeader(uint offset, uint size, VhostUserConfigFlags flags)
    {
        Offset = offset;
        Size = size;
        Flags = flags;
    }

    /// <summary>Syntax check: 1 to 256 bytes, offset+size within 0x1000, only known flags.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
        => Size is >= 1 and <= VhostUserLimits.MaxConfigSize
           && (ulong)Offset + Size <= VhostUserLimits.MaxConfigSpaceEnd
           && (Flags & ~(VhostUserConfigFlags.Writable | VhostUserConfigFlags.LiveMigration)) == 0;
}
