namespace VhostUserBackend.Testing;

/// <summary>One region of a <see cref="GuestRam"/>.</summary>
/// <param name="GuestPhysicalAddress">Guest physical address of the first byte.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="FileOffset">Offset in the memfd.</param>
/// <param name="UserAddress">Where the driver view maps the first byte (the "frontend user address").</param>
public readonly record struct GuestRamRegion(ulong GuestPhysicalAddress, ulong Size, ulong FileOffset, ulong UserAddress);
