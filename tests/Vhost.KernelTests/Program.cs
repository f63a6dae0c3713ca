using System.Xml.Linq;
using Vhost.GuestHarness;

namespace Vhost.KernelTests;

/// <summary>
/// Entry point: runs xunit as the generated entry point would. With <c>--guest-results</c> (used
/// inside the test guest) it also writes xunit's XML report to a temporary file and prints one
/// <c>VHOSTTEST Class.Method PASS|FAIL|SKIP detail</c> line per test, which the host parses.
/// </summary>
internal static class Program
{
    public const string GuestResultsOption = "--guest-results";

    public static int Main(string[] args)
    {
        if (!args.Contains(GuestResultsOption))
        {
            return Xunit.Runner.InProc.SystemConsole.ConsoleRunner.Run(args).GetAwaiter().GetResult();
        }

        string xml = Path.Combine(Path.GetTempPath(), $"kernel-tests-{Environment.ProcessId}.xml");
        string[] xunitArgs = [.. args.Where(a => a != GuestResultsOption), "-xml", xml];
        int exit = Xunit.Runner.InProc.SystemConsole.ConsoleRunner.Run(xunitArgs).GetAwaiter().GetResult();
        if (!File.Exists(xml))
        {
            Console.WriteLine(new GuestTestResult("kernel-tests-report", GuestTestStatus.Fail, $"xunit wrote no report (exit {exit})").ToLine());
            return exit == 0 ? 1 : exit;
        }

        foreach (GuestTestResult r in ToResults(XDocument.Load(xml)))
        {
            Console.WriteLine(r.ToLine());
        }

        return exit;
    }

    /// <summary>Turns xunit's XML report into result lines named <c>Class.Method</c> (namespace dropped).</summary>
    internal static IEnumerable<GuestTestResult> ToResults(XDocument report)
    {
        foreach (XElement test in report.Descendants("test"))
        {
            string type = (string?)test.Attribute("type") ?? "?";
            string name = type[(type.LastIndexOf('.') + 1)..] + "." + ((string?)test.Attribute("method") ?? "?");
            string result = (string?)test.Attribute("result") ?? "Fail";
            string detail = result switch
            {
                "Pass" => $"{(string?)test.Attribute("time")} s",
                "Skip" => (string?)test.Element("reason") ?? string.Empty,
                _ => ((string?)test.Element("failure")?.Element("message") ?? "failed"),
            };
            detail = string.Join(" | ", detail.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            GuestTestStatus status = result switch
            {
                "Pass" => GuestTestStatus.Pass,
                "Skip" => GuestTestStatus.Skip,
                _ => GuestTestStatus.Fail,
            };
            yield return new GuestTestResult(name, status, detail);
        }
    }
}
