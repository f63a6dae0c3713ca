using System.Runtime.InteropServices;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests;

/// <summary>
/// A tiny .NET program run inside the test guest (<c>dotnet Vhost.IntegrationTests.dll guest-probe</c>):
/// it reports, as result lines, which runtime runs it and whether it can open the guest kernel's
/// vhost devices. Exit status 0 when every check passed.
/// </summary>
internal static class GuestProbe
{
    public const string Command = "guest-probe";

    public static int Run()
    {
        var results = new List<GuestTestResult>
        {
            new("dotnet-runtime", GuestTestStatus.Pass, $"{RuntimeInformation.FrameworkDescription} {RuntimeInformation.RuntimeIdentifier} kernel={Environment.OSVersion.Version}"),
            Environment.GetEnvironmentVariable("VHOST_TEST_IN_GUEST") == "1"
                ? new("dotnet-in-guest", GuestTestStatus.Pass, "VHOST_TEST_IN_GUEST=1")
                : new("dotnet-in-guest", GuestTestStatus.Fail, "VHOST_TEST_IN_GUEST is not 1: not started by the guest's /init"),
            Open("/dev/vhost-net"),
            Open("/dev/vhost-vsock"),
        };
        foreach (GuestTestResult r in results)
        {
            Console.WriteLine(r.ToLine());
        }

        return results.All(r => r.Status == GuestTestStatus.Pass) ? 0 : 1;
    }

    private static GuestTestResult Open(string path)
    {
        string name = "dotnet-open:" + path;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            return new(name, GuestTestStatus.Pass, $"fd={handle.DangerousGetHandle()}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new(name, GuestTestStatus.Fail, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
