using System.Buffers.Binary;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Vhost.TestSupport;
using VhostUserBackend.Devices.Input;
using VhostUserInput;

namespace Vhost.KernelTests;

/// <summary>
/// The vhost-user-input sample's evdev pass-through (<see cref="EvdevSource"/>) against real kernel
/// evdevs of the test guest (the trixie cloud kernel has no uinput): the i8042 AT keyboard every
/// q35 machine has, and the QEMU virtio tablet KernelGuestTests adds. The config built from the
/// ioctls is checked against what the kernel exports in sysfs; events injected into the evdev (a
/// write to its node, as uinput-less tools do) travel through the whole sample device, a
/// <see cref="VhostUserDaemon"/> driven by a model driver over vhost-user, into the event queue; an
/// LED the driver sends on the status queue reaches the device (EVIOCGLED).
/// </summary>
public sealed class EvdevPassThroughTests
{
    private const string Keyboard = "AT Translated Set 2 keyboard";
    private const string Tablet = "QEMU Virtio Tablet";
    private const ushort BusI8042 = 0x11;

    [Fact]
    public void The_keyboard_config_is_what_the_kernel_says_of_the_device()
    {
        (string node, string sys) = RequireEvdev(Keyboard);
        using var source = new EvdevSource(node, grab: false);
        InputDeviceConfig config = source.Config;
        Assert.Equal(Keyboard, config.Name);
        Assert.Equal(ReadSysfs(sys, "device/uniq"), config.Serial);
        Assert.Equal(
            (BusI8042, SysfsHex(sys, "device/id/vendor"), SysfsHex(sys, "device/id/product"), SysfsHex(sys, "device/id/version")),
            (config.Ids.BusType, config.Ids.Vendor, config.Ids.Product, config.Ids.Version));
        AssertCodesMatchSysfs(config, sys);
        Assert.Contains((ushort)VirtioInputKeyCode.A, config.EventCodes[VirtioInputEventType.Key]);
        Assert.Equal([0, 1, 2], config.EventCodes[VirtioInputEventType.Led]);
        Assert.Empty(config.AbsoluteAxes);
    }

    [Fact]
    public void The_tablet_config_has_its_absolute_axes()
    {
        (string node, string sys) = RequireEvdev(Tablet);
        using var source = new EvdevSource(node, grab: false);
        InputDeviceConfig config = source.Config;
        Assert.Equal(Tablet, config.Name);
        AssertCodesMatchSysfs(config, sys);

        // QEMU's virtio tablet: ABS_X and ABS_Y over 0..INPUT_EVENT_ABS_MAX (0x7fff).
        Assert.Equal([0, 1], config.EventCodes[VirtioInputEventType.Absolute]);
        Assert.Equal([0, 1], config.AbsoluteAxes.Keys.Order().Select(a => (int)a));
        foreach (VirtioInputAbsInfo axis in config.AbsoluteAxes.Values)
        {
            Assert.Equal((0u, 0x7fffu), (axis.Min, axis.Max));
        }
    }

    [Fact]
    public void Key_events_of_the_evdev_reach_the_event_queue_and_a_status_LED_reaches_the_device()
    {
        (string node, _) = RequireEvdev(Keyboard);
        var source = new EvdevSource(node, grab: false);
        using (source)
        using (var rig = new InputDeviceRig(source))
        {
            rig.PostEventBuffers(8);

            // A press and a release in one write (no autorepeat in between), as the kernel injects them.
            Inject(node, [(1, 30, 1), (0, 0, 0), (1, 30, 0), (0, 0, 0)]);
            var got = new List<(VirtioInputEventType, ushort, uint)>();
            for (int i = 0; i < 4; i++)
            {
                VirtioInputEvent e = rig.TakeEvent();
                got.Add((e.Type, e.Code, e.Value));
            }

            Assert.Equal(
                [(VirtioInputEventType.Key, (ushort)30, 1u), (VirtioInputEventType.Synchronization, (ushort)0, 0u), (VirtioInputEventType.Key, (ushort)30, 0u), (VirtioInputEventType.Synchronization, (ushort)0, 0u)],
                got);
            Assert.True(rig.EventQueue.WaitForCalls(1, InputDeviceRig.Wait), "no call for the event queue");

            // The driver turns caps lock on, then off, on the status queue.
            Assert.Equal(0, source.ReadLedState() & 2);
            rig.SendStatus(new VirtioInputEvent(VirtioInputEventType.Led, (ushort)VirtioInputLed.CapsLock, 1));
            Assert.Equal(2, source.ReadLedState() & 2);
            rig.SendStatus(new VirtioInputEvent(VirtioInputEventType.Led, (ushort)VirtioInputLed.CapsLock, 0));
            Assert.Equal(0, source.ReadLedState() & 2);
        }
    }

    [Fact]
    public void A_grabbed_evdev_gives_its_events_to_the_sample_only()
    {
        (string node, _) = RequireEvdev(Keyboard);
        using var source = new EvdevSource(node, grab: true);
        using SafeFileHandle other = OpenNonBlocking(node);
        Inject(node, [(1, 48, 1), (0, 0, 0), (1, 48, 0), (0, 0, 0)]);
        // Until the release's SYN (other events of the device, such as the console's LED updates, may come in between).
        var events = new List<VirtioInputEvent>();
        var buffer = new VirtioInputEvent[16];
        for (long deadline = Environment.TickCount64 + 5000; Environment.TickCount64 < deadline;)
        {
            int got = source.ReadEvents(buffer);
            events.AddRange(buffer.AsSpan(0, got));
            if (events.SkipWhile(e => !(e.Type == VirtioInputEventType.Key && e.Value == 0)).Any(e => e.Type == VirtioInputEventType.Synchronization))
            {
                break;
            }

            if (got == 0)
            {
                Thread.Sleep(10);
            }
        }

        string all = string.Join(", ", events.Select(e => $"{e.Type}/{e.Code}/{e.Value}"));
        Assert.True(
            events.Where(e => e.Type == VirtioInputEventType.Key).Select(e => (e.Code, e.Value)).SequenceEqual([((ushort)48, 1u), ((ushort)48, 0u)]),
            "events: " + all);
        Assert.True(ReadAvailable(other) == 0, "a second reader got events of the grabbed device; the sample got: " + all);
    }

    [Fact]
    public void A_path_that_is_not_an_evdev_is_refused_with_the_reason()
    {
        VhostException e = Assert.Throws<VhostException>(() => new EvdevSource("/dev/null", grab: false));
        Assert.Contains("/dev/null", e.Message, StringComparison.Ordinal);
        Assert.Throws<VhostException>(() => new EvdevSource("/dev/input/no-such-event", grab: false));
    }

    /// <summary>The node and sysfs directory of the evdev named <paramref name="name"/>; skips on a host without it, fails in the guest.</summary>
    private static (string Node, string Sys) RequireEvdev(string name)
    {
        if (Directory.Exists("/sys/class/input"))
        {
            foreach (string sys in Directory.EnumerateDirectories("/sys/class/input", "event*"))
            {
                if (ReadSysfs(sys, "device/name") == name && File.Exists("/dev/input/" + Path.GetFileName(sys)))
                {
                    return ("/dev/input/" + Path.GetFileName(sys), sys);
                }
            }
        }

        if (Environment.GetEnvironmentVariable("VHOST_TEST_IN_GUEST") == "1")
        {
            Assert.Fail($"no evdev named '{name}' in the test guest (virtio_input and evdev loaded? KernelGuestTests adds the tablet)");
        }

        Assert.Skip($"needs the evdev '{name}': runs inside the QEMU guest (tests/Vhost.IntegrationTests KernelGuestTests runs this exe there)");
        return default;
    }

    private static string ReadSysfs(string sys, string file) => File.ReadAllText(Path.Combine(sys, file)).TrimEnd('\n');

    private static ushort SysfsHex(string sys, string file) => ushort.Parse(ReadSysfs(sys, file), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>Every event type's codes equal the kernel's capability bitmap in sysfs (hex longs, most significant first).</summary>
    private static void AssertCodesMatchSysfs(InputDeviceConfig config, string sys)
    {
        foreach ((string file, VirtioInputEventType type) in new[]
        {
            ("key", VirtioInputEventType.Key), ("rel", VirtioInputEventType.Relative), ("abs", VirtioInputEventType.Absolute),
            ("msc", VirtioInputEventType.Miscellaneous), ("sw", VirtioInputEventType.Switch), ("led", VirtioInputEventType.Led),
            ("snd", VirtioInputEventType.Sound),
        })
        {
            string[] words = ReadSysfs(sys, "device/capabilities/" + file).Split(' ');
            byte[] bitmap = new byte[words.Length * 8];
            for (int i = 0; i < words.Length; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bitmap.AsSpan(i * 8), ulong.Parse(words[words.Length - 1 - i], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }

            ushort[] expected = InputDeviceConfig.CodesOf(bitmap);
            Assert.Equal(expected, config.EventCodes.GetValueOrDefault(type) ?? []);
        }
    }

    /// <summary>Writes <c>struct input_event</c>s into the evdev (the kernel injects them as the device's events).</summary>
    private static unsafe void Inject(string node, (ushort Type, ushort Code, int Value)[] events)
    {
        byte[] raw = new byte[events.Length * 24];
        for (int i = 0; i < events.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan((i * 24) + 16), events[i].Type);
            BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan((i * 24) + 18), events[i].Code);
            BinaryPrimitives.WriteInt32LittleEndian(raw.AsSpan((i * 24) + 20), events[i].Value);
        }

        // One write(2): the whole group reaches the input core at once.
        using SafeFileHandle fd = File.OpenHandle(node, FileMode.Open, FileAccess.Write);
        fixed (byte* p = raw)
        {
            Assert.Equal(raw.Length, (int)Native.write((int)fd.DangerousGetHandle(), p, raw.Length));
        }
    }

    private static SafeFileHandle OpenNonBlocking(string node)
    {
        int fd = Native.open(node, Native.O_RDONLY | Native.O_NONBLOCK | Native.O_CLOEXEC);
        Assert.True(fd >= 0, $"open {node}: {Native.LastErrno}");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Bytes a non-blocking read gets now (0 on EAGAIN).</summary>
    private static unsafe int ReadAvailable(SafeFileHandle fd)
    {
        byte* buffer = stackalloc byte[24 * 8];
        nint n = Native.read((int)fd.DangerousGetHandle(), buffer, 24 * 8);
        return n < 0 ? 0 : (int)n;
    }
}
