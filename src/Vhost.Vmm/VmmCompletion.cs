namespace Vhost.Vmm;

/// <summary>A completed descriptor chain read from a used ring.</summary>
/// <param name="Head">The chain's head descriptor index (what <see cref="VmmQueue.Submit"/> returned).</param>
/// <param name="Length">The bytes the device reports it wrote into the chain's writable buffers.</param>
public readonly record struct VmmCompletion(ushort Head, uint Length);
