using System.Globalization;
using System.Text;

namespace Vhost.GuestHarness;

/// <summary>What one guest boot produced: its result lines, its script's exit status and output, and diagnostics.</summary>
public sealed class GuestRunResult
{
    internal GuestRunResult(GuestOutput output, int qemuExitCode, bool timedOut, TimeSpan elapsed, string console, string qemuErrors, string? virtiofsErrors, IReadOnlyList<string> arguments)
    {
        Output = output;
        QemuExitCode = qemuExitCode;
        TimedOut = timedOut;
        Elapsed = elapsed;
        Console = console;
        QemuErrors = qemuErrors;
        VirtiofsErrors = virtiofsErrors;
        Arguments = arguments;
    }

    /// <summary>The parsed output port.</summary>
    public GuestOutput Output { get; }

    /// <summary>The guest's result lines (<c>VHOSTTEST &lt;name&gt; PASS|FAIL|SKIP &lt;detail&gt;</c>), in order.</summary>
    public IReadOnlyList<GuestTestResult> Results => Output.Results;

    /// <summary>The script's (or command's) other output lines, stdout and stderr merged.</summary>
    public IReadOnlyList<string> OutputLines => Output.Lines;

    /// <summary>The script's exit status; <see langword="null"/> when the guest never finished it (crash, panic, timeout).</summary>
    public int? ExitCode => Output.ExitCode;

    /// <summary>Whether the guest ran its script to the end and reported the exit status.</summary>
    public bool Completed => Output.ExitCode is not null;

    /// <summary>
    /// Whether the run is a success: completed with exit status 0, no result line failed, and
    /// QEMU exited cleanly.
    /// </summary>
    public bool Succeeded => ExitCode == 0 && QemuExitCode == 0 && !TimedOut && Results.All(r => r.Status != GuestTestStatus.Fail);

    /// <summary>QEMU's exit status (0 after the guest powers off; -1 when it was killed).</summary>
    public int QemuExitCode { get; }

    /// <summary>Whether the hard timeout killed the guest.</summary>
    public bool TimedOut { get; }

    /// <summary>Wall time from QEMU's start to its exit.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>The guest console (kernel messages, /init's messages), <c>\r</c> removed.</summary>
    public string Console { get; }

    /// <summary>What QEMU printed on stderr.</summary>
    public string QemuErrors { get; }

    /// <summary>What virtiofsd printed on stderr (host-root runs only).</summary>
    public string? VirtiofsErrors { get; }

    /// <summary>The QEMU command line that ran (without the binary).</summary>
    public IReadOnlyList<string> Arguments { get; }

    /// <summary>Finds the result line named <paramref name="name"/>.</summary>
    /// <param name="name">The result's name.</param>
    /// <returns>The first result with that name, or <see langword="null"/>.</returns>
    public GuestTestResult? Find(string name) => Results.FirstOrDefault(r => r.Name == name);

    /// <summary>A multi-line summary for assertion messages: status, results, output, the console's tail and QEMU's errors.</summary>
    /// <returns>The text.</returns>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"guest: completed={Completed} exit={ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "none"} qemu-exit={QemuExitCode} timed-out={TimedOut} elapsed={Elapsed.TotalSeconds:F1}s kernel={Output.KernelRelease ?? "?"}\n");
        foreach (GuestTestResult r in Results)
        {
            sb.Append("  ").Append(r.ToString()).Append('\n');
        }

        AppendTail(sb, "output", string.Join('\n', OutputLines), 40);
        AppendTail(sb, "console", Console, 30);
        AppendTail(sb, "qemu stderr", QemuErrors, 20);
        if (VirtiofsErrors is not null)
        {
            AppendTail(sb, "virtiofsd stderr", VirtiofsErrors, 10);
        }

        sb.Append("qemu args: ").Append(string.Join(' ', Arguments)).Append('\n');
        return sb.ToString();
    }

    /// <inheritdoc/>
    public override string ToString() => Describe();

    private static void AppendTail(StringBuilder sb, string title, string text, int count)
    {
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0)
        {
            return;
        }

        sb.Append(CultureInfo.InvariantCulture, $"--- {title} (last {Math.Min(count, lines.Length)} of {lines.Length} lines)\n");
        foreach (string line in lines.Skip(Math.Max(0, lines.Length - count)))
        {
            sb.Append("  ").Append(line).Append('\n');
        }
    }
}
