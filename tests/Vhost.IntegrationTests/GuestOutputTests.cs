using Vhost.GuestHarness;

namespace Vhost.IntegrationTests;

/// <summary>Parsing and formatting of the guest's output protocol (no guest needed).</summary>
public sealed class GuestOutputTests
{
    [Theory]
    [InlineData("VHOSTTEST boot PASS kernel=6.12 uptime=3.01", "boot", GuestTestStatus.Pass, "kernel=6.12 uptime=3.01")]
    [InlineData("VHOSTTEST x FAIL", "x", GuestTestStatus.Fail, "")]
    [InlineData("VHOSTTEST dev:/dev/vhost-net SKIP no module", "dev:/dev/vhost-net", GuestTestStatus.Skip, "no module")]
    [InlineData("VHOSTTEST a PASS  two  spaces ", "a", GuestTestStatus.Pass, " two  spaces ")]
    public void TryParse_reads_well_formed_lines(string line, string name, GuestTestStatus status, string detail)
    {
        Assert.True(GuestTestResult.TryParse(line, out GuestTestResult? r));
        Assert.Equal(new GuestTestResult(name, status, detail), r);
    }

    [Theory]
    [InlineData("")]
    [InlineData("VHOSTTEST")]
    [InlineData("VHOSTTEST name")]
    [InlineData("VHOSTTEST name pass detail")]
    [InlineData("VHOSTTEST name OK")]
    [InlineData("VHOSTTEST  PASS")]
    [InlineData("VHOSTTEST-END exit=0")]
    [InlineData(" VHOSTTEST a PASS")]
    [InlineData("XVHOSTTEST a PASS")]
    public void TryParse_rejects_other_lines(string line)
    {
        Assert.False(GuestTestResult.TryParse(line, out GuestTestResult? r));
        Assert.Null(r);
    }

    [Fact]
    public void ToLine_round_trips()
    {
        var r = new GuestTestResult("vring-num", GuestTestStatus.Fail, "EINVAL (22) for num=3");
        Assert.Equal("VHOSTTEST vring-num FAIL EINVAL (22) for num=3", r.ToLine());
        Assert.True(GuestTestResult.TryParse(r.ToLine(), out GuestTestResult? back));
        Assert.Equal(r, back);
        Assert.Equal("VHOSTTEST ok PASS", new GuestTestResult("ok", GuestTestStatus.Pass, string.Empty).ToLine());
    }

    [Theory]
    [InlineData("", "d")]
    [InlineData("two words", "d")]
    [InlineData("tab\tname", "d")]
    [InlineData("n", "line\nbreak")]
    [InlineData("n", "cr\r")]
    public void ToLine_rejects_what_would_not_parse_back(string name, string detail)
    {
        var e = Assert.Throws<ArgumentException>(() => new GuestTestResult(name, GuestTestStatus.Pass, detail).ToLine());
        Assert.Equal(name.Length == 0 || name.Any(char.IsWhiteSpace) ? "Name" : "Detail", e.ParamName);
    }

    [Fact]
    public void Parse_splits_protocol_results_and_plain_output()
    {
        const string text =
            "VHOSTTEST-BEGIN test=script kernel=6.12.117+deb13-cloud-amd64 uptime=2.98\r\n" +
            "hello\r\n" +
            "VHOSTTEST a PASS 1\r\n" +
            "VHOSTTEST b FAIL why\r\n" +
            "VHOSTTEST c maybe\r\n" +
            "\r\n" +
            "VHOSTTEST-END exit=7 uptime=3.5\r\n";
        GuestOutput o = GuestOutput.Parse(text);
        Assert.True(o.Started);
        Assert.Equal("6.12.117+deb13-cloud-amd64", o.KernelRelease);
        Assert.Equal(7, o.ExitCode);
        Assert.Equal(["hello", string.Empty], o.Lines);
        Assert.Equal(
            [
                new("a", GuestTestStatus.Pass, "1"),
                new("b", GuestTestStatus.Fail, "why"),
                new GuestTestResult(GuestTestResult.MalformedName, GuestTestStatus.Fail, "VHOSTTEST c maybe"),
            ],
            o.Results);
    }

    [Theory]
    [InlineData("", false, null)]
    [InlineData("VHOSTTEST-BEGIN test=boot kernel=k uptime=1\n", true, null)]
    [InlineData("VHOSTTEST-BEGIN test=boot kernel=k uptime=1\nVHOSTTEST-END exit=0 uptime=2\n", true, 0)]
    [InlineData("VHOSTTEST-END exit=banana\n", false, -1)]
    public void Parse_reports_whether_the_guest_started_and_finished(string text, bool started, int? exitCode)
    {
        GuestOutput o = GuestOutput.Parse(text);
        Assert.Equal(started, o.Started);
        Assert.Equal(exitCode, o.ExitCode);
    }
}
