using System.Diagnostics;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// A device without a config space attached as a device type that needs one: QEMU refuses the
/// back-end right after GET_PROTOCOL_FEATURES, and the daemon's log says why. No guest boots: QEMU
/// fails while it realizes the device, in about a second.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class MissingConfigTests
{
    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [InlineData("7.2")]
    [InlineData("10")]
    public async Task Qemu_refusing_a_backend_without_CONFIG_is_explained_in_the_daemon_log(string qemuVersion)
    {
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync(qemuVersion, TestContext.Current.CancellationToken);
        using var dir = new TempDirectory("vhost-noconfig-");
        string socket = Path.Combine(dir.Path, "rng.sock");

        // The rng sample has no config space (virtio-rng has none), so it does not offer CONFIG.
        using SampleProcess rng = SampleProcess.Start("vhost-user-rng", ["--socket-path", socket]);
        var psi = new ProcessStartInfo(qemu.Path)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string d in qemu.DataDirectories)
        {
            psi.ArgumentList.Add("-L");
            psi.ArgumentList.Add(d);
        }

        foreach (string a in (string[])["-machine", "q35,memory-backend=mem", "-m", "128", "-object", "memory-backend-memfd,id=mem,size=128M,share=on",
            "-chardev", $"socket,id=c0,path={socket}", "-device", "vhost-user-blk-pci,chardev=c0", "-display", "none", "-nodefaults", "-S"])
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string name, string value) in qemu.Environment)
        {
            psi.Environment[name] = value;
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {qemu.Path}");
        Task<string> stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                throw;
            }
        }

        string qemuSays = await stderr + await stdout;
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("VHOST_USER_PROTOCOL_F_CONFIG", qemuSays, StringComparison.Ordinal);
        Assert.True(rng.WaitForOutput("disconnected right after GetProtocolFeatures", TimeSpan.FromSeconds(10)), rng.Output);
        Assert.Contains("CONFIG is not offered", rng.Output, StringComparison.Ordinal);
        TestContext.Current.TestOutputHelper?.WriteLine(qemuSays.Trim());
        TestContext.Current.TestOutputHelper?.WriteLine(rng.Output.Split('\n').First(l => l.Contains("disconnected right after", StringComparison.Ordinal)));
    }
}
