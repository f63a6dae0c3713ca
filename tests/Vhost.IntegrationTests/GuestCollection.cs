namespace Vhost.IntegrationTests;

/// <summary>
/// Every test that boots a guest is in this collection: they run one at a time (a TCG guest
/// keeps a core busy; the machine has two).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GuestCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "QemuGuest";
}
