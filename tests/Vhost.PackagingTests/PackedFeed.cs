namespace Vhost.PackagingTests;

/// <summary>
/// Packs Vhost, VhostUserBackend, VhostUserBackend.Hosting, VhostUserBackend.Testing, Vhost.Vmm and VhostUserBackend.Templates (already
/// built: this project references them) into a temporary folder feed, once for the test class.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public static readonly string[] Libraries = ["Vhost", "VhostUserBackend", "VhostUserBackend.Hosting", "VhostUserBackend.Testing", "Vhost.Vmm"];

    public PackedFeed()
    {
        Root = Directory.CreateTempSubdirectory("vhost-pack-").FullName;
        Feed = Directory.CreateDirectory(Path.Combine(Root, "feed")).FullName;
        Packages = Directory.CreateDirectory(Path.Combine(Root, "packages")).FullName;
        string[] projects =
        [
            .. Libraries.Select(l => Path.Combine("src", l, l + ".csproj")),
            Path.Combine("templates", "VhostUserBackend.Templates", "VhostUserBackend.Templates.csproj"),
        ];
        foreach (string project in projects)
        {
            Dotnet.Run(Dotnet.RepoRoot, TimeSpan.FromSeconds(60), null,
                "pack", project, "-c", Dotnet.Configuration, "--no-build", "--no-restore", "-o", Feed, "-tl:off", "-v:q", "-nologo");
        }
    }

    /// <summary>The temporary folder everything lives in (removed at the end).</summary>
    public string Root { get; }

    /// <summary>The folder feed with the .nupkg and .snupkg files.</summary>
    public string Feed { get; }

    /// <summary>A private global packages folder for the fresh projects.</summary>
    public string Packages { get; }

    public string PackagePath(string id, string extension = "nupkg") => Path.Combine(Feed, $"{id}.{Dotnet.PackageVersion}.{extension}");

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
