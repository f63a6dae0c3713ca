namespace Vhost.IntegrationTests.Peers;

/// <summary>
/// Tests against third-party back-ends run one at a time: dpdk-testpmd keeps two cores busy
/// while it forwards, and the machine has two.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PeerCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Peers";
}
