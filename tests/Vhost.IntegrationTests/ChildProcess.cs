using System.Diagnostics;

namespace Vhost.IntegrationTests;

/// <summary>Runs a program to its end and captures what it printed; one that outlives the timeout is killed (with its children) and fails the test.</summary>
internal static class ChildProcess
{
    /// <summary>Runs <paramref name="program"/> with <paramref name="args"/>.</summary>
    /// <returns>The exit code, standard output and standard error.</returns>
    public static (int ExitCode, string Stdout, string Stderr) Run(string program, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(30);
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"{program} {string.Join(' ', args)} did not exit within {limit.TotalSeconds:F0} s:\n{stdout.Result}{stderr.Result}");
        }

        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
