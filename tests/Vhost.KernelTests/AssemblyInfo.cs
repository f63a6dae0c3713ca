namespace Vhost.KernelTests;

/// <summary>Every kernel-device test class is in this collection: they run one at a time (one vCPU in the guest; shared device nodes, tap names, vsock CIDs).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelDeviceCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "KernelDevices";
}
