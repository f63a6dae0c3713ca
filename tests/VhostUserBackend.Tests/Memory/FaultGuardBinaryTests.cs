using System.Diagnostics;

namespace VhostUserBackend.Tests.Memory;

/// <summary>The prebuilt libvhostfaultguard.so checked in under src/ is exactly what native/faultguard/build.sh builds from the checked-in source.</summary>
public sealed class FaultGuardBinaryTests
{
    [Fact]
    public void The_checked_in_library_is_rebuilt_byte_for_byte_from_the_source()
    {
        string root = Checkout.Root;
        string script = Path.Combine(root, "native", "faultguard", "build.sh");
        string shipped = Path.Combine(root, "src", "VhostUserBackend", "runtimes", "linux-x64", "native", "libvhostfaultguard.so");
        Assert.SkipUnless(File.Exists("/usr/bin/gcc"), "gcc is not installed (tools/install-test-deps.sh installs it)");
        string rebuilt = Path.Combine(Path.GetTempPath(), $"faultguard-{Guid.NewGuid():N}.so");
        try
        {
            var info = new ProcessStartInfo(script, rebuilt) { RedirectStandardError = true, UseShellExecute = false };
            using var build = Process.Start(info)!;
            string errors = build.StandardError.ReadToEnd();
            Assert.True(build.WaitForExit(60_000), "build.sh hung");
            Assert.True(build.ExitCode == 0, errors);
            Assert.True(File.ReadAllBytes(shipped).AsSpan().SequenceEqual(File.ReadAllBytes(rebuilt)), "the checked-in library differs from what build.sh builds: run native/faultguard/build.sh and commit the result");
        }
        finally
        {
            File.Delete(rebuilt);
        }
    }
}
