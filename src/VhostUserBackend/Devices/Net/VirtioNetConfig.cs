using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Net;

/// <summary>
/// The virtio-net configuration space (<c>struct virtio_net_config</c>, VIRTIO 1.3 §5.1.4): 24
/// bytes, little-endian, every field at the spec's offset. A field is meaningful only when its
/// feature is offered (see each one); leave the others zero.
/// </summary>
/// <remarks>A device fills one and serves its bytes (<c>MemoryMarshal.AsBytes</c>) from <see cref="IVhostUserBackend.GetConfig"/>.</remarks>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct VirtioNetConfig
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 24;

    /// <summary>The length of <see cref="Mac"/>.</summary>
    public const int MacLength = 6;

    /// <summary><see cref="Speed"/> when the speed is unknown.</summary>
    public const uint SpeedUnknown = uint.MaxValue;

    /// <summary><see cref="Duplex"/> for full duplex (0 is half duplex).</summary>
    public const byte DuplexFull = 1;

    /// <summary><see cref="Duplex"/> when the duplex is unknown.</summary>
    public const byte DuplexUnknown = 0xff;

    private fixed byte _mac[MacLength];

    /// <summary>The link status (<c>status</c>, offset 6; <see cref="VirtioNetFeatures.Status"/>).</summary>
    public VirtioNetStatus Status;

    /// <summary>The most RX/TX queue pairs (<c>max_virtqueue_pairs</c>, offset 8; <see cref="VirtioNetFeatures.MultiQueue"/>).</summary>
    public ushort MaxVirtqueuePairs;

    /// <summary>The largest MTU the driver should use (<c>mtu</c>, offset 10; <see cref="VirtioNetFeatures.Mtu"/>).</summary>
    public ushort Mtu;

    /// <summary>The link speed in Mbit/s, or <see cref="SpeedUnknown"/> (<c>speed</c>, offset 12; <see cref="VirtioNetFeatures.SpeedDuplex"/>).</summary>
    public uint Speed;

    /// <summary>0 for half, <see cref="DuplexFull"/> for full, <see cref="DuplexUnknown"/> (<c>duplex</c>, offset 16; <see cref="VirtioNetFeatures.SpeedDuplex"/>).</summary>
    public byte Duplex;

    /// <summary>The longest RSS key (<c>rss_max_key_size</c>, offset 17; <see cref="VirtioNetFeatures.Rss"/> or <see cref="VirtioNetFeatures.HashReport"/>).</summary>
    public byte RssMaxKeySize;

    /// <summary>The longest RSS indirection table (<c>rss_max_indirection_table_length</c>, offset 18; <see cref="VirtioNetFeatures.Rss"/>).</summary>
    public ushort RssMaxIndirectionTableLength;

    /// <summary>The hash types the device supports (<c>supported_hash_types</c>, offset 20; <see cref="VirtioNetFeatures.Rss"/> or <see cref="VirtioNetFeatures.HashReport"/>).</summary>
    public uint SupportedHashTypes;

    /// <summary>The MAC address the device suggests (<c>mac</c>, offset 0, <see cref="MacLength"/> bytes; <see cref="VirtioNetFeatures.Mac"/>).</summary>
    [UnscopedRef]
    public Span<byte> Mac => MemoryMarshal.CreateSpan(ref _mac[0], MacLength);
}
