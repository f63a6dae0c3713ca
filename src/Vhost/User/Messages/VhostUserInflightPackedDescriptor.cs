using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>One descriptor's state in the packed-ring inflight region (<c>DescStatePacked</c>, 32 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct VhostUserInflightPackedDescriptor
{
    /// <summary>1 while the buffer is in flight.</summary>
    [FieldOffset(0)]
    public byte Inflight;

    /// <summary>The next free entry.</summary>
    [FieldOffset(2)]
    public ushort Next;

    /// <summary>The last entry of the descriptor list.</summary>
    [FieldOffset(4)]
    public ushort Last;

    /// <summary>The number of descriptors in the list.</summary>
    [FieldOffset(6)]
    public ushort Num;

    /// <summary>The order in which the buffer was fetched.</summary>
    [FieldOffset(8)]
    public ulong Counter;

    /// <summary>The buffer id.</summary>
    [FieldOffset(16)]
    public ushort Id;

    /// <summary>The descriptor flags.</summary>
    [FieldOffset(18)]
    public ushort Flags;

    /// <summary>The buffer length.</summary>
    [FieldOffset(20)]
    public uint Length;

    /// <summary>The buffer address.</summary>
    [FieldOffset(24)]
    public ulong Address;

    /// <summary>Syntax check: the inflight byte is 0 or 1.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Inflight <= 1;
}
