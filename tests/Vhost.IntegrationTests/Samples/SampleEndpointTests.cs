using System.Diagnostics;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// What the samples say about a bad endpoint before any front-end is involved: an <c>--fd</c> that
/// is no socket, two endpoints at once, socket activation meant for another process.
/// </summary>
public sealed class SampleEndpointTests
{
    [Theory]
    [InlineData("vhost-user-rng")]
    [InlineData("vhost-user-blk")]
    public void An_fd_that_is_not_a_socket_exits_1_naming_it(string sample)
    {
        // The sample's stdin is a pipe.
        (int code, string stderr) = Run(sample, ["--fd", "0"]);
        Assert.Equal(1, code);
        Assert.Contains("fd 0 is not a socket", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_endpoints_at_once_exit_2()
    {
        (int code, string stderr) = Run("vhost-user-rng", ["--connect", "/tmp/never-a.sock", "--socket-path", "/tmp/never-b.sock"]);
        Assert.Equal(2, code);
        Assert.Contains("mutually exclusive", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("vhost-user-rng")]
    [InlineData("vhost-user-net")]
    public void Socket_activation_for_another_process_exits_2_naming_LISTEN_PID(string sample)
    {
        (int code, string stderr) = Run(sample, [], new Dictionary<string, string> { ["LISTEN_FDS"] = "1", ["LISTEN_PID"] = "1" });
        Assert.Equal(2, code);
        Assert.Contains("LISTEN_PID=1 names another process", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Stderr) Run(string sample, string[] args, Dictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, sample + ".dll"));
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string name, string value) in environment ?? [])
        {
            psi.Environment[name] = value;
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        string stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(60_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{sample} {string.Join(' ', args)} did not exit within 60 s");
        }

        return (p.ExitCode, stderr + stdout.Result);
    }
}
