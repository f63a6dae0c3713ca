using System.Runtime.InteropServices;

namespace VhostUserBackend.Virtio;

/// <summary>A packed ring's event suppression structure (<c>struct pvirtq_event_suppress</c>, 4 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct PackedEventSuppression
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 4;

    /// <summary>Descriptor ring position in bits 0-14 and wrap counter in bit 15 (<c>off_wrap</c>).</summary>
    public ushort OffsetAndWrap;

    /// <summary>The mode (<c>flags</c>).</summary>
    public PackedEventFlags Flags;
}
