namespace VhostUserBackend.Virtio;

/// <summary>One buffer of a descriptor chain: a validated guest physical range and its direction.</summary>
/// <param name="Address">Guest physical address (the whole range is mapped, possibly by adjacent regions).</param>
/// <param name="Length">Length in bytes.</param>
/// <param name="IsWriteOnly">True for a device-writable buffer, false for a device-readable one.</param>
public readonly record struct VirtqBuffer(ulong Address, uint Length, bool IsWriteOnly);
