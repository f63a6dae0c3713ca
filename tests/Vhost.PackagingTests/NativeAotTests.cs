using System.Diagnostics;

namespace Vhost.PackagingTests;

/// <summary>
/// The samples publish as NativeAOT executables with no trim or AOT warning, and the native
/// executable runs. One sample per test run keeps CI time bounded; the others are published the
/// same way (docs/nativeaot.md).
/// </summary>
[Collection(RepositoryBuildCollection.Name)]
public sealed class NativeAotTests
{
    [Fact]
    public void The_rng_sample_publishes_with_NativeAOT_without_warnings_and_runs()
    {
        string output = Path.Combine(Path.GetTempPath(), "vhost-aot-" + Guid.NewGuid().ToString("N"));
        try
        {
            string log = Dotnet.Run(Dotnet.RepoRoot, TimeSpan.FromMinutes(5), null,
                "publish", Path.Combine("samples", "VhostUserRng", "VhostUserRng.csproj"),
                "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", output, "-tl:off", "--nologo");
            string[] warnings = log.Split('\n').Where(l => l.Contains(": warning IL", StringComparison.Ordinal) || l.Contains(": warning IL3", StringComparison.Ordinal)).ToArray();
            Assert.True(warnings.Length == 0, "trim/AOT warnings:\n" + string.Join('\n', warnings));

            string exe = Path.Combine(output, "vhost-user-rng");
            Assert.True(File.Exists(exe), "no native executable at " + exe);
            var info = new ProcessStartInfo(exe, "--print-capabilities") { RedirectStandardOutput = true, UseShellExecute = false };
            using Process process = Process.Start(info)!;
            string stdout = process.StandardOutput.ReadToEnd();
            Assert.True(process.WaitForExit(10_000), "the native executable did not exit");
            Assert.Equal(0, process.ExitCode);
            Assert.Contains("\"type\"", stdout, StringComparison.Ordinal);
            Assert.Contains("rng", stdout, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }
}
