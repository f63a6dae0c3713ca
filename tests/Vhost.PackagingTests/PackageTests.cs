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
    [InlineData("VhostUserBackend.Testing")]
    [InlineData("Vhost.Vmm")]
    public void LibraryPackage_HasReadmeLicenseRepositoryDocsAndSymbols(string id)
    {
        using (ZipArchive nupkg = ZipFile.OpenRead(packed.PackagePath(id)))
        {
            string[] entries = [.. nupkg.Entries.Select(e => e.FullName)];
            Assert.Contains("README.md", entries);
            Assert.Contains("CHANGELOG.md", entries);
            Assert.Contains($"lib/net10.0/{id}.dll", entries);
            Assert.Contains($"lib/net10.0/{id}.xml", entries);
            Assert.DoesNotContain(entries, e => e.EndsWith(".pdb", StringComparison.Ordinal));
            if (id == "VhostUserBackend")
            {
                // The guest-memory fault guard ships prebuilt: no compiler on the user's machine.
                Assert.Contains("runtimes/linux-x64/native/libvhostfaultguard.so", entries);
            }

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

    /// <summary>
    /// Packages by audience: device authors take VhostUserBackend, which depends on Vhost only;
    /// the guest-driver model (VhostUserBackend.Testing) and the VMM-side helpers (Vhost.Vmm) are
    /// packages of their own that the device package never pulls in.
    /// </summary>
    [Theory]
    [InlineData("Vhost", "")]
    [InlineData("VhostUserBackend", "Vhost")]
    [InlineData("VhostUserBackend.Hosting", "VhostUserBackend")]
    [InlineData("VhostUserBackend.Testing", "VhostUserBackend")]
    [InlineData("Vhost.Vmm", "Vhost,VhostUserBackend.Testing")]
    public void LibraryPackage_DependsOnExactlyTheRepositoryPackagesOfItsAudience(string id, string expected)
    {
        using ZipArchive nupkg = ZipFile.OpenRead(packed.PackagePath(id));
        XDocument nuspec;
        using (Stream s = nupkg.GetEntry($"{id}.nuspec")!.Open())
        {
            nuspec = XDocument.Load(s);
        }

        string[] repositoryDependencies = [.. nuspec.Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => e.Attribute("id")!.Value)
            .Where(d => PackedFeed.Libraries.Contains(d))
            .Distinct()
            .Order(StringComparer.Ordinal)];
        Assert.Equal(expected.Split(',', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal), repositoryDependencies);
    }

    [Fact]
    public void DevicePackage_ShipsNoTestingOrVmmType()
    {
        using ZipArchive nupkg = ZipFile.OpenRead(packed.PackagePath("VhostUserBackend"));
        using var dll = new MemoryStream();
        using (Stream s = nupkg.GetEntry("lib/net10.0/VhostUserBackend.dll")!.Open())
        {
            s.CopyTo(dll);
        }

        dll.Position = 0;
        using var pe = new System.Reflection.PortableExecutable.PEReader(dll);
        System.Reflection.Metadata.MetadataReader md = System.Reflection.Metadata.PEReaderExtensions.GetMetadataReader(pe);
        string[] namespaces = [.. md.TypeDefinitions.Select(h => md.GetString(md.GetTypeDefinition(h).Namespace)).Distinct()];
        Assert.Contains("VhostUserBackend.Virtio", namespaces);
        Assert.DoesNotContain(namespaces, n => n.StartsWith("VhostUserBackend.Testing", StringComparison.Ordinal) || n.StartsWith("Vhost.Vmm", StringComparison.Ordinal));
        string[] names = [.. md.TypeDefinitions.Select(h => md.GetString(md.GetTypeDefinition(h).Name))];
        foreach (string moved in new[] { "GuestRam", "GuestRamRegion", "SplitQueueDriver", "PackedQueueDriver", "VmmDevice", "VmmDeviceOptions", "VmmQueue", "VmmCompletion", "VmmVhostDevice" })
        {
            Assert.DoesNotContain(moved, names);
        }

        string[] references = [.. md.AssemblyReferences.Select(h => md.GetString(md.GetAssemblyReference(h).Name))];
        Assert.Contains("Vhost", references);
        Assert.DoesNotContain("VhostUserBackend.Testing", references);
        Assert.DoesNotContain("Vhost.Vmm", references);
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
        Assert.True(File.Exists(Path.Combine(app, "bin", "Release", "net10.0", "runtimes", "linux-x64", "native", "libvhostfaultguard.so")), "the fault guard's native library is not in the app's output");

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

        // Every option docs/getting-started.md names is one the installed template takes.
        string help = Dotnet.Run(work, TimeSpan.FromSeconds(60), environment, "new", "vhost-user-backend", "--help");
        string create = File.ReadAllLines(Path.Combine(Dotnet.RepoRoot, "docs", "getting-started.md")).Single(l => l.StartsWith("dotnet new vhost-user-backend -n MyDevice", StringComparison.Ordinal));
        string[] documented = DocumentedOption().Matches(create).Select(m => m.Value).ToArray();
        Assert.NotEmpty(documented);
        Assert.All(documented, option => Assert.Contains(option + " ", help, StringComparison.Ordinal));

        Dotnet.Run(work, TimeSpan.FromSeconds(60), environment, "new", "vhost-user-backend", "-n", "MyDevice", "--queues", "2", "--queue-size", "128");

        string project = Path.Combine(work, "MyDevice");
        string device = File.ReadAllText(Path.Combine(project, "MyDevice", "Device.cs"));
        Assert.Contains("namespace MyDevice;", device);
        Assert.Contains("public int QueueCount => 2;", device);
        Assert.Contains("public ushort MaxQueueSize => 128;", device);

        // A socket path of this test's own in the generated appsettings.json (read below from another folder).
        string socket = Path.Combine(Path.GetTempPath(), $"tmpl-{Guid.NewGuid():N}.sock");
        string settings = Path.Combine(project, "MyDevice", "appsettings.json");
        File.WriteAllText(settings, File.ReadAllText(settings).Replace("/tmp/MyDevice.sock", socket, StringComparison.Ordinal));
        Assert.Contains($"Include=\"VhostUserBackend.Hosting\" Version=\"{Dotnet.PackageVersion}\"", File.ReadAllText(Path.Combine(project, "MyDevice", "MyDevice.csproj")));
        Assert.True(File.Exists(Path.Combine(project, "MyDevice.slnx")));

        string output = Dotnet.Run(project, TimeSpan.FromSeconds(180), environment, "test", "MyDevice.slnx", "-c", "Release", "-tl:off", "-nologo");
        Match summary = TestSummary().Match(output);
        Assert.True(summary.Success, output);
        Assert.Equal("0", summary.Groups["failed"].Value);
        Assert.Equal("1", summary.Groups["passed"].Value);

        // Started from the solution folder, not its own, the daemon still reads its appsettings.json
        // (the host's content root is the app's folder) and listens on the socket it names.
        string dll = Path.Combine(project, "MyDevice", "bin", "Release", "net10.0", "MyDevice.dll");
        using Process daemon = Dotnet.Start(project, environment, dll);
        var log = new System.Text.StringBuilder();
        daemon.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        daemon.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        try
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(socket) && !daemon.HasExited && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                Thread.Sleep(100);
            }

            lock (log)
            {
                Assert.True(File.Exists(socket), $"the daemon started from {project} did not listen on {socket} (exited: {daemon.HasExited}):\n{log}");
            }
        }
        finally
        {
            if (!daemon.HasExited)
            {
                daemon.Kill(entireProcessTree: true);
                daemon.WaitForExit();
            }

            File.Delete(socket);
        }
    }

    [GeneratedRegex(@"--[a-z][a-z-]*")]
    private static partial Regex DocumentedOption();

    [GeneratedRegex(@"Failed:\s+(?<failed>\d+), Passed:\s+(?<passed>\d+)")]
    private static partial Regex TestSummary();
}
