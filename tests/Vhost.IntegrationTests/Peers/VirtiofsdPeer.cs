using System.Diagnostics;

namespace Vhost.IntegrationTests.Peers;

/// <summary>
/// The two virtiofsd back-ends: QEMU 7.2's C virtiofsd (qemu-system-common, libvhost-user) and
/// Debian trixie's Rust virtiofsd 1.13 (rust-vmm vhost-user-backend), which needs glibc 2.39
/// and so runs with trixie's own loader and libraries unpacked by tools/peers/fetch-virtiofsd-rs.sh
/// under .build/peers. Both exit when their front-end disconnects: one daemon per connection.
/// </summary>
internal static class VirtiofsdPeer
{
    public const string CBinary = "/usr/lib/qemu/virtiofsd";

    public static PeerProcess StartC(out string shareDir)
    {
        Assert.SkipUnless(File.Exists(CBinary), $"{CBinary} not installed (apt package qemu-system-common; tools/install-test-deps.sh installs it)");
        DirectoryInfo dir = PeerProcess.CreateDirectory("virtiofsd-c");
        shareDir = Directory.CreateDirectory(Path.Combine(dir.FullName, "share")).FullName;
        string socket = Path.Combine(dir.FullName, "fs.sock");
        return PeerProcess.Start("virtiofsd (C)", dir, socket, 60, CBinary, [$"--socket-path={socket}", "-o", $"source={shareDir}", "-o", "cache=none"]);
    }

    public static PeerProcess StartRust(out string shareDir)
    {
        string root = FetchRust();
        DirectoryInfo dir = PeerProcess.CreateDirectory("virtiofsd-rs");
        shareDir = Directory.CreateDirectory(Path.Combine(dir.FullName, "share")).FullName;
        string socket = Path.Combine(dir.FullName, "fs.sock");
        string lib = Path.Combine(root, "usr/lib/x86_64-linux-gnu");
        return PeerProcess.Start("virtiofsd (Rust)", dir, socket, 60, Path.Combine(lib, "ld-linux-x86-64.so.2"),
            ["--library-path", lib, Path.Combine(root, "usr/libexec/virtiofsd"), $"--socket-path={socket}", $"--shared-dir={shareDir}", "--cache=never", "--sandbox=none"]);
    }

    /// <summary>Runs the fetch script once per process (it is a no-op when the cache is filled); skips the test with the script's reason when it fails.</summary>
    private static string FetchRust()
    {
        string repo = RepoRoot();
        string root = Environment.GetEnvironmentVariable("VHOST_VIRTIOFSD_RS_ROOT") is { Length: > 0 } r ? r : Path.Combine(repo, ".build", "peers", "trixie-root");
        if (File.Exists(Path.Combine(root, "usr/libexec/virtiofsd")))
        {
            return root;
        }

        string script = Path.Combine(repo, "tools", "peers", "fetch-virtiofsd-rs.sh");
        Assert.SkipUnless(File.Exists(script), $"{script} not found");
        var psi = new ProcessStartInfo(script) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(root);
        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        Task<string> output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(600_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Skip($"Rust virtiofsd unavailable: {script} took over 10 min");
        }

        Assert.SkipWhen(p.ExitCode != 0, $"Rust virtiofsd unavailable: {script} exited {p.ExitCode}: {err.Result.Trim()} {output.Result.Trim()}");
        return root;
    }

    private static string RepoRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Vhost.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException($"no Vhost.sln above {AppContext.BaseDirectory}");
    }
}
