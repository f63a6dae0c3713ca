using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>A vring state (<c>struct vhost_vring_state</c>): SET_VRING_NUM/BASE/ENABLE/ENDIAN, GET_VRING_BASE, VRING_KICK, in-band call/err.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserVringState
{
    /// <summary>The ring index.</summary>
    public uint Index;

    /// <summary>The value (size, base, enable flag, endianness, ...).</summary>
    public uint Num;

    /// <summary>Creates the payload.</summary>
    /// <param name="index">The ring index.</param>
    /// <param name="num">The value.</param>
    public VhostUserVringState(uint index, uint num)
    {
        Index = index;
        Num = num;
    }

    /// <summary>Syntax check: the index is addressable (below <see cref="VhostUserLimits.MaxQueues"/>).</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Index < VhostUserLimits.MaxQueues;
}
