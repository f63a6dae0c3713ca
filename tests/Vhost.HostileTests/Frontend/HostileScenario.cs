using Vhost.HostileTests.Targets;

namespace Vhost.HostileTests.Frontend;

/// <summary>One attack: a class (header abuse, memory tables, ...), a name, and what it does to the daemon's socket.</summary>
/// <param name="Category">The class of attack.</param>
/// <param name="Name">What it does.</param>
/// <param name="Attack">The attack; it owns and closes whatever it opens.</param>
public sealed record HostileScenario(string Category, string Name, Action<IDaemonTarget> Attack)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Category}: {Name}";
}
