using System.Globalization;
using Vhost.GuestHarness;

namespace Vhost.IntegrationTests.Samples;

/// <summary>
/// The <c>vhost-user-input</c> sample's keyboard served to a real QEMU 10 guest
/// (<c>vhost-user-input-pci</c>; QEMU 7.2's needs KVM): the guest's virtio_input driver reads the
/// device's name, serial, ids and capabilities from its config space, sets caps lock through the
/// status queue (the sample logs it), and decodes the line the sample then types (built-in guest
/// test <c>input-keyboard</c>).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class InputSampleTests
{
    private const string Sample = "vhost-user-input";
    private const string Name = "vhost-user-input test keyboard";

    /// <summary>Lower and upper case, digits, symbols with and without shift, spaces.</summary>
    private const string Text = "Hello, World! <vhost-user-input> #42 {\"ok\": [1, 2]} a=b+c; ~/x_y.z`|\\?";

    [Fact(Timeout = GuestCollection.TestTimeoutMs)]
    public async Task Guest_decodes_the_typed_line_and_its_caps_lock_reaches_the_status_queue()
    {
        CancellationToken cancellationToken = TestContext.Current.CancellationToken;
        QemuBinary qemu = await QemuBinary.GetOrSkipAsync("10", cancellationToken);
        await GuestImage.GetOrSkipAsync(cancellationToken);
        using var dir = new TempDirectory("vhost-input-");
        string socket = Path.Combine(dir.Path, "input.sock");
        using SampleProcess input = SampleProcess.Start(Sample, ["--socket-path", socket, "--keyboard", "--stdin", "--name", Name], redirectInput: true);
        // The built-in test run as a script, so that the environment is exported to it.
        var options = new QemuGuestOptions { MemoryMiB = 256, Script = "exec sh /tests/input-keyboard.sh", Qemu = qemu };
        options.Environment["INPUT_NAME"] = Name;
        options.Environment["INPUT_WAIT"] = "30";
        options.AddVhostUserDevice("vhost-user-input-pci", socket);
        Task<GuestRunResult> guest = QemuGuest.RunAsync(options, cancellationToken);

        // The guest writes its caps-lock LED once it reads the event device: then the line is typed.
        bool led = await Task.Run(() => input.WaitForOutput("LED caps-lock on", TimeSpan.FromSeconds(60)), cancellationToken);
        if (led)
        {
            input.WriteInputLine(Text);
        }

        GuestRunResult r = await guest;
        TestContext.Current.TestOutputHelper?.WriteLine($"guest {r.Elapsed.TotalSeconds:F1} s\n{input.Output}");
        Assert.True(led, "the sample never logged the guest's caps-lock LED (status queue):\n" + r.Describe() + "\n" + input.Output);
        Assert.True(r.Succeeded, r.Describe() + "\n" + input.Output);

        // Config space, as the guest's input core got it.
        Assert.Equal(Name, r.Find("input-name")?.Detail);
        Assert.Equal("vhost-user-input-keyboard", r.Find("input-serial")?.Detail);
        Assert.Equal("bus=0006 vendor=0000 product=0001 version=0001", r.Find("input-ids")?.Detail);

        // EV_SYN, EV_KEY and EV_LED (plus EV_REP, which the input core adds for keyboards); LEDs num, caps and scroll lock.
        Assert.Matches("^ev=1?20003 led=7$", r.Find("input-caps")?.Detail);

        // Exactly the text, then Enter; every press released, shift pressed once per shifted character.
        Assert.Equal("[" + Text + "]", r.Find("input-typed")?.Detail);
        int shifted = Text.Count(c => char.IsAsciiLetterUpper(c) || "~!@#$%^&*()_+{}|:\"<>?".Contains(c, StringComparison.Ordinal));
        int presses = Text.Length + 1 + shifted;
        Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"presses={presses} releases={presses}"), r.Find("input-keys")?.Detail);
    }
}
