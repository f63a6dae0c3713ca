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

    /// <summary>
    /// xunit's per-test limit for guest tests (ms): a backstop for hangs in test code; the guest
    /// itself is bounded by <see cref="Vhost.GuestHarness.QemuGuestOptions.Timeout"/>.
    /// </summary>
    public const int TestTimeoutMs = 300_000;
}
