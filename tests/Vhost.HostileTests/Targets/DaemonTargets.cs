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

    /// <summary>The sample daemons (built beside this test project) that are the default process targets.</summary>
    public static readonly string[] SampleDaemons = ["vhost-user-blk", "vhost-user-rng", "vhost-user-net", "vhost-user-input"];

    /// <summary>What a sample needs on its command line besides the socket (the input sample: a source).</summary>
    private static string SampleArguments(string name) => name == "vhost-user-input" ? " --keyboard" : string.Empty;

    /// <summary>
    /// The process targets named in <see cref="EnvironmentVariable"/>; when it is unset, every
    /// sample daemon of this repository (<see cref="SampleDaemons"/>) run with <c>dotnet</c> from
    /// its build output.
    /// </summary>
    /// <returns>Their specifications.</returns>
    public static IReadOnlyList<string> FromEnvironment()
    {
        string? configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured.Split(";;", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }

        return SampleDaemons.Select(name => $"process:dotnet {SampleAssembly(name)} --socket-path {{socket}}{SampleArguments(name)}").ToArray();
    }

    /// <summary>
    /// The path of a sample daemon's assembly in this checkout's build output
    /// (<c>samples/VhostUserX/bin/CONFIGURATION/net10.0/NAME.dll</c>, the configuration this test
    /// assembly was built with).
    /// </summary>
    /// <param name="name">The executable name, for example <c>vhost-user-blk</c>.</param>
    /// <returns>The path (which may not exist when the sample was not built).</returns>
    public static string SampleAssembly(string name)
    {
        string project = "VhostUser" + string.Concat(name["vhost-user-".Length..].Select((c, i) => i == 0 ? char.ToUpperInvariant(c) : c));
        string outputDirectory = AppContext.BaseDirectory.TrimEnd('/');
        string framework = Path.GetFileName(outputDirectory);
        string configuration = Path.GetFileName(Path.GetDirectoryName(outputDirectory)!);
        return Path.Combine(Checkout.Find() ?? ".", "samples", project, "bin", configuration, framework, name + ".dll");
    }
}
