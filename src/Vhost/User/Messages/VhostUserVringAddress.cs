using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The SET_VRING_ADDR payload (<c>struct vhost_vring_addr</c>, 40 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserVringAddress
{
    /// <summary>The ring index.</summary>
    public uint Index;

    /// <summary>Ring flags.</summary>
    public VhostUserVringAddressFlags Flags;

    /// <summary>The descriptor table address (front-end user address, or GPA with GPA_ADDRESSES).</summary>
    public ulong DescriptorTableAddress;

    /// <summary>The used ring address.</summary>
    public ulong UsedRingAddress;

    /// <summary>The available ring address.</summary>
    public ulong AvailableRingAddress;

    /// <summary>The guest physical address for used-ring logging (with <see cref="VhostUserVringAddressFlags.Log"/>).</summary>
    public ulong LogAddress;

    /// <summary>Syntax check: only known flags, index addressable, descriptor table 16-byte, used ring 4-byte and available ring 2-byte aligned.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid()
        => (Flags & ~VhostUserVringAddressFlags.Log) == 0
           && Index < VhostUserLimits.MaxQueues
           && (DescriptorTableAddress & 0xF) == 0
           && (UsedRingAddress & 0x3) == 0
           && (AvailableRingAddress & 0x1) == 0;
}
