namespace VhostUserBackend.Memory;

/// <summary>
/// A guest memory snapshot held for as long as the lease is not disposed (rust-vmm's
/// <c>GuestMemoryLoadGuard</c>): a memory-table change publishes a new snapshot, and the mappings
/// of this one stay valid until every lease on it is disposed. Take one with
/// <see cref="GuestMemoryAtomic.Lease"/> for guest memory a device reads outside a descriptor
/// chain; a popped chain already carries its snapshot (<see cref="Virtio.DescriptorChain.Memory"/>).
/// </summary>
/// <remarks>Dispose it once the memory is no longer needed; disposing twice is harmless.</remarks>
public sealed class GuestMemoryLease : IDisposable
{
    private GuestMemory? _memory;

    internal GuestMemoryLease(GuestMemory memory) => _memory = memory;

    /// <summary>The leased snapshot.</summary>
    /// <exception cref="ObjectDisposedException">The lease was disposed.</exception>
    public GuestMemory Memory => Volatile.Read(ref _memory) ?? throw new ObjectDisposedException(nameof(GuestMemoryLease));

    /// <summary>Gives the snapshot back; its mappings go once no lease or queue holds it.</summary>
    public void Dispose() => Interlocked.Exchange(ref _memory, null)?.Release();
}
