namespace Vhost.PackagingTests;

/// <summary>
/// Tests that run the SDK on the repository's own projects (pack, a NativeAOT publish) share one
/// collection so they never run at the same time: a publish with a runtime identifier restores the
/// libraries again and rewrites their obj/project.assets.json, which a concurrent
/// <c>dotnet pack --no-restore</c> reads (CI once failed with "Could not find file
/// .../obj/project.assets.json").
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RepositoryBuildCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "repository build";
}
