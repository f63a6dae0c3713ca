namespace Vhost.GuestHarness;

/// <summary>
/// The parsed output port of one guest run: the guest's result lines, the exit status of its
/// test script and every other line the script printed.
/// </summary>
/// <remarks>
/// Protocol (written by <c>tools/guest/init</c> on the second serial port):
/// <c>VHOSTTEST-BEGIN test=NAME kernel=RELEASE uptime=S</c>, then the script's output with any
/// number of <c>VHOSTTEST &lt;name&gt; PASS|FAIL|SKIP &lt;detail&gt;</c> lines, then
/// <c>VHOSTTEST-END exit=STATUS uptime=S</c> just before the guest powers off.
/// A line that starts with <c>VHOSTTEST </c> but does not parse becomes a
/// <see cref="GuestTestStatus.Fail"/> result named <see cref="GuestTestResult.MalformedName"/>, so a
/// typo in a guest script can never turn into a silent pass.
/// </remarks>
public sealed class GuestOutput
{
    private const string BeginPrefix = GuestTestResult.Prefix + "-BEGIN ";
    private const string EndPrefix = GuestTestResult.Prefix + "-END ";

    private GuestOutput(IReadOnlyList<GuestTestResult> results, IReadOnlyList<string> lines, bool started, int? exitCode, string? kernelRelease)
    {
        Results = results;
        Lines = lines;
        Started = started;
        ExitCode = exitCode;
        KernelRelease = kernelRelease;
    }

    /// <summary>The result lines, in order.</summary>
    public IReadOnlyList<GuestTestResult> Results { get; }

    /// <summary>Every line the script printed that is not a protocol line (<c>VHOSTTEST...</c>).</summary>
    public IReadOnlyList<string> Lines { get; }

    /// <summary>Whether the guest's /init reached the test (a <c>VHOSTTEST-BEGIN</c> line was seen).</summary>
    public bool Started { get; }

    /// <summary>The test script's exit status from <c>VHOSTTEST-END</c>; <see langword="null"/> when the guest never got there.</summary>
    public int? ExitCode { get; }

    /// <summary>The guest kernel's release from <c>VHOSTTEST-BEGIN</c>, when seen.</summary>
    public string? KernelRelease { get; }

    /// <summary>Parses the text of an output port (serial output: <c>\r\n</c> line ends are accepted).</summary>
    /// <param name="text">The whole captured text.</param>
    /// <returns>The parsed output.</returns>
    public static GuestOutput Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Parse(text.Replace("\r", string.Empty, StringComparison.Ordinal).Split('\n'));
    }

    /// <summary>Parses output lines (without line breaks).</summary>
    /// <param name="lines">The lines, in order.</param>
    /// <returns>The parsed output.</returns>
    public static GuestOutput Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var results = new List<GuestTestResult>();
        var other = new List<string>();
        bool started = false;
        int? exitCode = null;
        string? kernel = null;
        var all = lines.ToList();
        // A trailing empty element comes from the final line break.
        if (all.Count > 0 && all[^1].Length == 0)
        {
            all.RemoveAt(all.Count - 1);
        }

        foreach (string line in all)
        {
            if (line.StartsWith(BeginPrefix, StringComparison.Ordinal))
            {
                started = true;
                kernel = Field(line, "kernel");
            }
            else if (line.StartsWith(EndPrefix, StringComparison.Ordinal))
            {
                exitCode = int.TryParse(Field(line, "exit"), out int code) ? code : -1;
            }
            else if (GuestTestResult.TryParse(line, out GuestTestResult? result))
            {
                results.Add(result);
            }
            else if (line.StartsWith(GuestTestResult.Prefix + " ", StringComparison.Ordinal))
            {
                results.Add(new GuestTestResult(GuestTestResult.MalformedName, GuestTestStatus.Fail, line));
            }
            else
            {
                other.Add(line);
            }
        }

        return new GuestOutput(results, other, started, exitCode, kernel);
    }

    private static string? Field(string line, string key)
    {
        foreach (string word in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (word.StartsWith(key + "=", StringComparison.Ordinal))
            {
                return word.Substring(key.Length + 1);
            }
        }

        return null;
    }
}
