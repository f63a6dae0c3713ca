using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.PackagingTests;

[Collection(RepositoryBuildCollection.Name)]
public sealed partial class PackageTests(PackedFeed packed) : IClassFixture<PackedFeed>
{
    [Theory]
    [InlineData("Vhost")]
    [InlineData("VhostUserBackend")]
    [InlineData("VhostUserBackend.Hosting")]
    public void LibraryPackage_HasReadmeLicenseRepositoryDocsAndSymbols(string id)
    {
        using (ZipArchive nupkg = ZipFile.OpenRead(packed.PackagePath(id)))
        {
            string[] entries = [.. nupkg.Entries.Select(e => e.FullName)];
            Assert.Contains("README.md", entries);
            Assert.Contains($"lib/net10.0/{id}.dll", entries);
            Assert.Contains($"lib/net10.0/{id}.xml", entries);
            Assert.DoesNotContain(entries, e => e.EndsWith(".pdb", StringComparison.Ordinal));

            XDocument nuspec;
            using (Stream s = nupkg.GetEntry($"{id}.nuspec")!.Open())
            {
                nuspec = XDocument.Load(s);
            }

            XElement metadata = nuspec.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string Value(string name) => metadata.Elements().Single(e => e.Name.LocalName == name).Value;
            XElement Element(string name) => metadata.Elements().Single(e => e.Name.LocalName == name);
            Assert.Equal("Apache-2.0", Value("license"));
            Assert.Equal("expression", Element("license").Attribute("type")?.Value);
            Assert.Equal("README.md", Value("readme"));
            Assert.False(string.IsNullOrWhiteSpace(Value("description")));
            Assert.StartsWith("https://github.com/", Value("projectUrl"), StringComparison.Ordinal);
            XElement repository = Element("repository");
            Assert.Equal("git", repository.Attribute("type")?.Value);
            Assert.StartsWith("https://github.com/", repository.Attribute("url")?.Value, StringComparison.Ordinal);
            Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? string.Empty);

            // Every Microsoft.Extensions.* dependency is on one version line.
            string[] extensionVersions = [.. metadata.Descendants().Where(e => e.Name.LocalName == "dependency"
                    && e.Attribute("id")!.Value.StartsWith("Microsoft.Extensions.", StringComparison.Ordinal))
                .Select(e => e.Attribute("version")!.Value).Distinct()];
            Assert.True(extensionVersions.Length <= 1, $"Microsoft.Extensions.* versions: {string.Join(", ", extensionVersions)}");
        }

        using ZipArchive snupkg = ZipFile.OpenRead(packed.PackagePath(id, "snupkg"));
        Assert.Contains($"lib/net10.0/{id}.pdb", snupkg.Entries.Select(e => e.FullName));
    }

    [Fact]
    public void FreshProject_ReferencingThePackages_BuildsATinyBackend_ThatServesAFrontend()
    {
        string app = Directory.CreateDirectory(Path.Combine(packed.Root, "TinyBackend")).FullName;
        Dotnet.WriteNuGetConfig(app, packed.Feed, packed.Packages);
        File.WriteAllText(Path.Combine(app, "TinyBackend.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="VhostUserBackend" Version="{Dotnet.PackageVersion}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using Vhost.Virtio;
            using VhostUserBackend;

            using var daemon = new VhostUserDaemon(new TinyDevice());
            daemon.Start(args[0]);
            Console.WriteLine("listening");
            // Serve until the first front-end has come and gone (or 20 s pass).
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!daemon.IsConnected && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }

            while (daemon.IsConnected && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }

            daemon.Stop();
            Console.WriteLine($"served {daemon.ConnectionCount} front-end");
            return daemon.ConnectionCount == 1 ? 0 : 1;

            sealed class TinyDevice : IVhostUserBackend
            {
                public int QueueCount => 2;
                public ushort MaxQueueSize => 128;
                public ulong Features => (ulong)VirtioFeatures.Version1;
                public void HandleEvent(int deviceEvent, VringEpollEvents events, ReadOnlySpan<Vring> vrings, int workerIndex)
                {
                }
            }
            """);
        Dotnet.Run(app, TimeSpan.FromSeconds(120), null, "build", "-c", "Release", "-tl:off", "-v:q", "-nologo");

        // The right package was used: the one just packed, from the private folder.
        Assert.True(Directory.Exists(Path.Combine(packed.Packages, "vhostuserbackend", Dotnet.PackageVersion)));
        Assert.True(Directory.Exists(Path.Combine(packed.Packages, "vhost", Dotnet.PackageVersion)));

        string socket = Path.Combine(Path.GetTempPath(), $"tiny-{Guid.NewGuid():N}.sock");
        using Process backend = Dotnet.Start(app, null, Path.Combine("bin", "Release", "net10.0", "TinyBackend.dll"), socket);
        try
        {
            Assert.Equal("listening", backend.StandardOutput.ReadLine());
            using (VhostUserFrontend frontend = VhostUserFrontend.Connect(socket, TimeSpan.FromSeconds(5)))
            {
                ulong features = frontend.GetFeatures();
                Assert.NotEqual(0UL, features & (ulong)VirtioFeatures.Version1);
                frontend.SetProtocolFeatures(frontend.GetProtocolFeatures() & VhostUserProtocolFeatures.MQ);
                Assert.Equal(2, frontend.GetQueueNum());
                frontend.SetOwner();
            }

            Assert.True(backend.WaitForExit(TimeSpan.FromSeconds(20)), "the tiny backend did not exit after its front-end left");
            Assert.Equal("served 1 front-end", backend.StandardOutput.ReadLine());
            Assert.Equal(0, backend.ExitCode);
        }
        finally
        {
            if (!backend.HasExited)
            {
                backend.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public void Template_CreatesADevice_WhoseGeneratedTestPasses()
    {
        string work = Directory.CreateDirectory(Path.Combine(packed.Root, "template")).FullName;
        var environment = new Dictionary<string, string> { ["DOTNET_CLI_HOME"] = Path.Combine(work, "home") };
        Dotnet.WriteNuGetConfig(work, packed.Feed, packed.Packages);
        Dotnet.Run(work, TimeSpan.FromSeconds(60), environment, "new", "install", packed.PackagePath("VhostUserBackend.Templates"));
        Dotnet.Run(work, TimeSpan.FromSeconds(60), environment, "new", "vhost-user-backend", "-n", "MyDevice", "--queues", "2");

        string project = Path.Combine(work, "MyDevice");
        string device = File.ReadAllText(Path.Combine(project, "MyDevice", "Device.cs"));
        Assert.Contains("namespace MyDevice;", device);
        Assert.Contains("public int QueueCount => 2;", device);
        Assert.Contains("public ushort MaxQueueSize => 256;", device);
        Assert.Contains($"Include=\"VhostUserBackend.Hosting\" Version=\"{Dotnet.PackageVersion}\"", File.ReadAllText(Path.Combine(project, "MyDevice", "MyDevice.csproj")));
        Assert.True(File.Exists(Path.Combine(project, "MyDevice.slnx")));

        string output = Dotnet.Run(project, TimeSpan.FromSeconds(180), environment, "test", "MyDevice.slnx", "-c", "Release", "-tl:off", "-nologo");
        Match summary = TestSummary().Match(output);
        Assert.True(summary.Success, output);
        Assert.Equal("0", summary.Groups["failed"].Value);
        Assert.Equal("1", summary.Groups["passed"].Value);
    }

    [GeneratedRegex(@"Failed:\s+(?<failed>\d+), Passed:\s+(?<passed>\d+)")]
    private static partial Regex TestSummary();
}
