using System.Reflection;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests;

/// <summary>
/// The kernel vhost and vDPA frontends against a real kernel: boots ONE test guest (trixie 6.12,
/// vhost-net, vhost-vsock, VDUSE + vhost-vdpa, evdevs of its i8042 keyboard and of a QEMU virtio
/// tablet) for the whole class, runs the Vhost.KernelTests exe
/// inside it (tests/Vhost.KernelTests/run-kernel-tests.sh creates the VDUSE block device first),
/// and reports each in-guest test as its own result here, so they count individually.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class KernelGuestTests
{
    private static readonly Lazy<Task<GuestRunResult>> GuestRun = new(RunGuestAsync);

    /// <summary>The directory of the built Vhost.KernelTests exe (same configuration and framework as this assembly).</summary>
    private static string KernelTestsDirectory
    {
        get
        {
            string sep = Path.DirectorySeparatorChar.ToString();
            return AppContext.BaseDirectory.Replace(sep + "Vhost.IntegrationTests" + sep + "bin" + sep, sep + "Vhost.KernelTests" + sep + "bin" + sep, StringComparison.Ordinal);
        }
    }

    /// <summary>Every test of Vhost.KernelTests as <c>Class.Method</c> (the names its guest mode prints).</summary>
    public static TheoryData<string> InGuestTests
    {
        get
        {
            var data = new TheoryData<string>();
            string dll = Path.Combine(KernelTestsDirectory, "Vhost.KernelTests.dll");
            if (!File.Exists(dll))
            {
                data.Add("(Vhost.KernelTests not built: " + dll + ")");
                return data;
            }

            Assembly assembly = Assembly.LoadFrom(dll);
            foreach (Type type in assembly.GetExportedTypes().OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                foreach (MethodInfo method in type.GetMethods().OrderBy(m => m.Name, StringComparer.Ordinal))
                {
                    if (method.GetCustomAttributes().Any(a => a.GetType().Name is "FactAttribute" or "TheoryAttribute"))
                    {
                        data.Add(type.Name + "." + method.Name);
                    }
                }
            }

            return data;
        }
    }

    [Theory(Timeout = GuestCollection.TestTimeoutMs)]
    [MemberData(nameof(InGuestTests))]
    public async Task In_guest(string test)
    {
        Assert.True(File.Exists(Path.Combine(KernelTestsDirectory, "Vhost.KernelTests.dll")), test);
        GuestRunResult r = await GuestRun.Value.WaitAsync(TestContext.Current.CancellationToken);
        GuestTestResult? result = r.Find(test);
        Assert.True(result is not null, $"{test} did not report a result in the guest:\n{r.Describe()}");
        switch (result.Status)
        {
            case GuestTestStatus.Skip:
                Assert.Skip("skipped in the guest: " + result.Detail);
                break;
            case GuestTestStatus.Fail:
                Assert.Fail($"failed in the guest: {result.Detail}\n{string.Join('\n', r.OutputLines.TakeLast(60))}");
                break;
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{test}: {result.Detail}");
    }

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task Guest_run_reports_every_test_once_and_exits_cleanly()
    {
        GuestRunResult r = await GuestRun.Value.WaitAsync(TestContext.Current.CancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine($"guest run: {r.Elapsed.TotalSeconds:F1} s, exit {r.ExitCode}");
        string[] expected = [.. InGuestTests.Select(row => (string)row.Data)];
        string[] reported = [.. r.Results.Select(x => x.Name)];
        Assert.Equal(expected.Order(StringComparer.Ordinal), reported.Order(StringComparer.Ordinal));
        Assert.True(r.Succeeded, r.Describe());
        Assert.DoesNotContain(r.Results, x => x.Status == GuestTestStatus.Skip);
    }

    private static Task<GuestRunResult> RunGuestAsync()
    {
        string dir = KernelTestsDirectory;
        string command = $"sh {Quote(Path.Combine(dir, "run-kernel-tests.sh"))} {Quote(QemuGuest.DotnetHostPath)}";
        var options = new QemuGuestOptions { MemoryMiB = 1024, Timeout = TimeSpan.FromSeconds(240), WorkingDirectory = dir };

        // An absolute-axis evdev for the input sample's pass-through tests (EvdevPassThroughTests), beside the i8042 keyboard.
        options.AddArguments("-device", "virtio-tablet-pci");
        return QemuGuest.RunInGuestAsync(command, options, CancellationToken.None);
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
