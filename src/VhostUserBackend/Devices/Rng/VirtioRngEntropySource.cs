namespace VhostUserBackend.Devices.Rng;

/// <summary>Fills <paramref name="destination"/> with entropy (for <see cref="VirtioRngRequest.Fill"/>).</summary>
/// <param name="destination">The bytes to fill, all of them.</param>
public delegate void VirtioRngEntropySource(Span<byte> destination);
