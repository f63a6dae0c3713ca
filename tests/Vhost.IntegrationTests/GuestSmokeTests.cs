using System.Diagnostics;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests;

/// <summary>
/// Smoke tests of the guest harness itself: a bare boot, the script channel, the hard timeout,
/// and commands and a .NET program run inside a guest whose root is the host's.
/// They skip (never pass) when QEMU or the guest kernel cannot be had.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class GuestSmokeTests
{
    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task Boot_with_no_devices_reports_a_pass_line()
    {
        var watch = Stopwatch.StartNew();
        GuestRunResult r = await QemuGuest.RunAsync(new QemuGuestOptions { Test = "boot", MemoryMiB = 256 }, TestContext.Current.CancellationToken);
        Report(watch, r);

        Assert.True(r.Succeeded, r.Describe());
        Assert.Equal(0, r.ExitCode);
        GuestTestResult boot = Assert.Single(r.Results);
        Assert.Equal("boot", boot.Name);
        Assert.Equal(GuestTestStatus.Pass, boot.Status);
        Assert.Contains("kernel=" + (await GuestImage.GetAsync(TestContext.Current.CancellationToken)).KernelVersion, boot.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task Script_results_and_exit_status_come_back_including_failures()
    {
        var watch = Stopwatch.StartNew();
        var options = new QemuGuestOptions
        {
            MemoryMiB = 256,
            Script = """
                . /run/vhosttest/lib.sh
                vt_pass first "answer=$ANSWER"
                vt_check second test -c /dev/vhost-net
                vt_check third test -e /no/such/file
                vt_skip fourth not here
                echo plain output line
                echo VHOSTTEST broken line
                exit 3
                """,
        };
        options.Environment["ANSWER"] = "it's 42";
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        Report(watch, r);

        Assert.True(r.Completed, r.Describe());
        Assert.Equal(3, r.ExitCode);
        Assert.False(r.Succeeded);
        Assert.Equal(
            [
                new("first", GuestTestStatus.Pass, "answer=it's 42"),
                new("second", GuestTestStatus.Pass, "test -c /dev/vhost-net"),
                new("third", GuestTestStatus.Fail, "exit 1: test -e /no/such/file"),
                new("fourth", GuestTestStatus.Skip, "not here"),
                new GuestTestResult(GuestTestResult.MalformedName, GuestTestStatus.Fail, "VHOSTTEST broken line"),
            ],
            r.Results);
        Assert.Equal(["plain output line"], r.OutputLines);
    }

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task Hard_timeout_kills_the_guest()
    {
        var watch = Stopwatch.StartNew();
        var options = new QemuGuestOptions { MemoryMiB = 256, Script = "sleep 600", Timeout = TimeSpan.FromSeconds(2) };
        GuestRunResult r = await QemuGuest.RunAsync(options, TestContext.Current.CancellationToken);
        Report(watch, r);

        Assert.True(r.TimedOut, r.Describe());
        Assert.False(r.Completed);
        Assert.False(r.Succeeded);
        Assert.InRange(r.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10));
    }

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task A_guest_that_stops_answering_is_reported_with_its_run_state_and_vcpu_registers()
    {
        // A paused guest never answers the agent: the timeout's message must carry what a hung
        // guest needs for a diagnosis (QEMU's run state and two register samples per vCPU).
        CancellationToken ct = TestContext.Current.CancellationToken;
        using GuestVm vm = await GuestVm.StartAsync(new QemuGuestOptions { MemoryMiB = 256 }, ct);
        await vm.Qmp.ExecuteAsync("stop", cancellationToken: ct);
        var e = await Assert.ThrowsAsync<TimeoutException>(() => vm.RunAsync("true", TimeSpan.FromSeconds(2), ct));
        Assert.Contains("\"status\":\"paused\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("sample 2:", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.Message.Split("RIP=").Length - 1);
    }

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task RunInGuest_sees_the_kernel_vhost_devices()
    {
        var watch = Stopwatch.StartNew();
        GuestRunResult r = await QemuGuest.RunInGuestAsync(
            "uname -r; test -c /dev/vhost-net && test -c /dev/vhost-vsock && ls -l /dev/vhost-net /dev/vhost-vsock && grep -E '^(vhost|vhost_net|vhost_vsock) ' /proc/modules | cut -d' ' -f1 | sort",
            cancellationToken: TestContext.Current.CancellationToken);
        Report(watch, r);

        Assert.True(r.Succeeded, r.Describe());
        string kernel = (await GuestImage.GetAsync(TestContext.Current.CancellationToken)).KernelVersion;
        Assert.Equal(kernel, r.OutputLines[0]);
        Assert.Contains(r.OutputLines, l => l.StartsWith("crw", StringComparison.Ordinal) && l.EndsWith("/dev/vhost-net", StringComparison.Ordinal));
        Assert.Contains(r.OutputLines, l => l.StartsWith("crw", StringComparison.Ordinal) && l.EndsWith("/dev/vhost-vsock", StringComparison.Ordinal));
        Assert.Equal(["vhost", "vhost_net", "vhost_vsock"], r.OutputLines.Where(l => l.StartsWith("vhost", StringComparison.Ordinal)));
    }

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task RunInGuest_runs_a_dotnet_program()
    {
        var watch = Stopwatch.StartNew();
        string exe = Path.Combine(AppContext.BaseDirectory, "Vhost.IntegrationTests.dll");
        string command = $"{QuoteForShell(QemuGuest.DotnetHostPath)} {QuoteForShell(exe)} {GuestProbe.Command}";
        GuestRunResult r = await QemuGuest.RunInGuestAsync(command, cancellationToken: TestContext.Current.CancellationToken);
        Report(watch, r);

        Assert.True(r.Succeeded, r.Describe());
        Assert.Equal(
            ["dotnet-runtime", "dotnet-in-guest", "dotnet-open:/dev/vhost-net", "dotnet-open:/dev/vhost-vsock"],
            r.Results.Select(x => x.Name));
        Assert.All(r.Results, x => Assert.Equal(GuestTestStatus.Pass, x.Status));
        Assert.StartsWith(".NET ", r.Find("dotnet-runtime")!.Detail, StringComparison.Ordinal);
    }

    private static string QuoteForShell(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static void Report(Stopwatch watch, GuestRunResult r) =>
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"wall {watch.Elapsed.TotalSeconds:F1} s (qemu {r.Elapsed.TotalSeconds:F1} s); exit={r.ExitCode?.ToString() ?? "none"} timed-out={r.TimedOut}");
}
