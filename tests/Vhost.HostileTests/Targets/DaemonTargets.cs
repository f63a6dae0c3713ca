namespace Vhost.HostileTests.Targets;

/// <summary>
/// Makes targets from a specification: <c>inproc</c> (the default) or <c>process:COMMAND</c>
/// (see <see cref="ProcessTarget"/>). The environment variable <c>VHOST_HOSTILE_TARGET</c> holds
/// the specification for <see cref="ProcessHostileFrontendTests"/>; several targets may be given,
/// separated by <c>;;</c>.
/// </summary>
public static class DaemonTargets
{
    /// <summary>The environment variable naming the process targets.</summary>
    public const string EnvironmentVariable = "VHOST_HOSTILE_TARGET";

    /// <summary>Creates the target described by <paramref name="specification"/>.</summary>
    /// <param name="specification"><c>inproc</c> or <c>process:COMMAND</c>.</param>
    /// <returns>A started target.</returns>
    /// <exception cref="ArgumentException">An unknown form.</exception>
    public static IDaemonTarget Create(string specification)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(specification);
        if (specification == "inproc")
        {
            return new InProcessTarget();
        }

        if (specification.StartsWith("process:", StringComparison.Ordinal))
        {
            return new ProcessTarget(specification["process:".Length..]);
        }

        throw new ArgumentException($"unknown target '{specification}': use inproc or process:COMMAND", nameof(specification));
    }

    /// <summary>The process targets named in <see cref="EnvironmentVariable"/>.</summary>
    /// <returns>Their specifications (empty when unset).</returns>
    public static IReadOnlyList<string> FromEnvironment()
        => (Environment.GetEnvironmentVariable(EnvironmentVariable) ?? string.Empty)
            .Split(";;", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
