using System.Text.RegularExpressions;

namespace Vhost.PackagingTests;

public sealed partial class DocsTests
{
    /// <summary>docs/getting-started.md shows the template's files as `dotnet new vhost-user-backend -n MyDevice` writes them (the template itself is built and tested by PackageTests).</summary>
    [Fact]
    public void GettingStartedDoc_ShowsTheTemplateVerbatim()
    {
        string doc = File.ReadAllText(Path.Combine(Dotnet.RepoRoot, "docs", "getting-started.md"));
        string template = Path.Combine(Dotnet.RepoRoot, "templates", "VhostUserBackend.Templates", "content", "vhost-user-backend");
        MatchCollection blocks = FileBlock().Matches(doc);
        Assert.Equal(["MyDevice/Device.cs", "MyDevice/Program.cs", "MyDevice/appsettings.json"], blocks.Select(m => m.Groups["file"].Value));
        foreach (Match block in blocks)
        {
            string file = block.Groups["file"].Value.Replace("MyDevice", "VhostUserDevice", StringComparison.Ordinal);
            string expected = File.ReadAllText(Path.Combine(template, file))
                .Replace("VhostUserDevice", "MyDevice", StringComparison.Ordinal)
                .Replace("QUEUE_COUNT", "1", StringComparison.Ordinal)
                .Replace("MAX_QUEUE_SIZE", "256", StringComparison.Ordinal);
            Assert.Equal(expected, block.Groups["code"].Value);
        }
    }

    [GeneratedRegex(@"^`(?<file>MyDevice/[^`]+)`:\n\n```[a-z]+\n(?<code>.*?)^```$", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FileBlock();
}
