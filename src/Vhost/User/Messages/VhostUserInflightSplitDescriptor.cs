using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>One descriptor's state in the split-ring inflight region (<c>DescStateSplit</c>, 16 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
internal struct VhostUserInflightSplitDescriptor
{
    /// <summary>1 while the descriptor head is in flight.</summary>
    [FieldOffset(0)]
    public byte Inflight;

    /// <summary>The next head in the last batch (offset 6, after 5 bytes of padding).</summary>
    [FieldOffset(6)]
    public ushort Next;

    /// <summary>The order in which the head was fetched.</summary>
    [FieldOffset(8)]
    public ulong Counter;

    /// <summary>Syntax check: the inflight byte is 0 or 1.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Inflight <= 1;
}
