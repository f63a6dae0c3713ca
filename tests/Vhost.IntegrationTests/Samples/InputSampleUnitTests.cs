using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Vhost.TestSupport;
using VhostUserBackend.Config;
using VhostUserBackend.Devices.Input;
using VhostUserInput;
using Key = VhostUserBackend.Devices.Input.VirtioInputKeyCode;

namespace Vhost.IntegrationTests.Samples;

/// <summary>The vhost-user-input sample's ASCII key map and its config space (select/subsel to answer), without a guest.</summary>
public sealed class InputSampleUnitTests
{
    [Theory]
    [InlineData('a', Key.A, false)]
    [InlineData('A', Key.A, true)]
    [InlineData('z', Key.Z, false)]
    [InlineData('0', Key.D0, false)]
    [InlineData(')', Key.D0, true)]
    [InlineData('1', Key.D1, false)]
    [InlineData('!', Key.D1, true)]
    [InlineData('@', Key.D2, true)]
    [InlineData('-', Key.Minus, false)]
    [InlineData('_', Key.Minus, true)]
    [InlineData('=', Key.Equal, false)]
    [InlineData('+', Key.Equal, true)]
    [InlineData('[', Key.LeftBrace, false)]
    [InlineData('}', Key.RightBrace, true)]
    [InlineData('\\', Key.Backslash, false)]
    [InlineData('|', Key.Backslash, true)]
    [InlineData(';', Key.Semicolon, false)]
    [InlineData(':', Key.Semicolon, true)]
    [InlineData('\'', Key.Apostrophe, false)]
    [InlineData('"', Key.Apostrophe, true)]
    [InlineData('`', Key.Grave, false)]
    [InlineData('~', Key.Grave, true)]
    [InlineData(',', Key.Comma, false)]
    [InlineData('<', Key.Comma, true)]
    [InlineData('.', Key.Dot, false)]
    [InlineData('>', Key.Dot, true)]
    [InlineData('/', Key.Slash, false)]
    [InlineData('?', Key.Slash, true)]
    [InlineData(' ', Key.Space, false)]
    [InlineData('\t', Key.Tab, false)]
    [InlineData('\n', Key.Enter, false)]
    public void A_character_maps_to_its_US_key_and_shift(char c, Key key, bool shift)
    {
        Assert.True(AsciiKeyMap.TryGetKey(c, out Key k, out bool s));
        Assert.Equal((key, shift), (k, s));
    }

    [Fact]
    public void Every_printable_ASCII_character_has_a_key_and_each_key_types_at_most_two_characters()
    {
        var byKey = new Dictionary<(Key, bool), char>();
        for (char c = ' '; c <= '~'; c++)
        {
            Assert.True(AsciiKeyMap.TryGetKey(c, out Key key, out bool shift), $"'{c}'");
            Assert.True(byKey.TryAdd((key, shift), c), $"'{c}' and '{byKey.GetValueOrDefault((key, shift))}' share {key} shift={shift}");
            Assert.Contains(key, AsciiKeyMap.AllKeys);
        }

    }

    [Theory]
    [InlineData('é')]
    [InlineData('\r')]
    [InlineData('\u007f')]
    [InlineData('\0')]
    public void A_character_without_a_key_is_refused(char c)
    {
        Assert.False(AsciiKeyMap.TryGetKey(c, out _, out _));
        ArgumentException e = Assert.Throws<ArgumentException>(() => AsciiKeyMap.Type("ab" + c));
        Assert.Contains("at 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Typing_presses_and_releases_each_key_with_a_SYN_after_each_and_shift_around_shifted_characters()
    {
        const ushort Syn = 0;
        (VirtioInputEventType, ushort, uint)[] expected =
        [
            (VirtioInputEventType.Key, (ushort)Key.LeftShift, 1), (VirtioInputEventType.Synchronization, Syn, 0),
            (VirtioInputEventType.Key, (ushort)Key.H, 1), (VirtioInputEventType.Synchronization, Syn, 0),
            (VirtioInputEventType.Key, (ushort)Key.H, 0), (VirtioInputEventType.Synchronization, Syn, 0),
            (VirtioInputEventType.Key, (ushort)Key.LeftShift, 0), (VirtioInputEventType.Synchronization, Syn, 0),
            (VirtioInputEventType.Key, (ushort)Key.I, 1), (VirtioInputEventType.Synchronization, Syn, 0),
            (VirtioInputEventType.Key, (ushort)Key.I, 0), (VirtioInputEventType.Synchronization, Syn, 0),
        ];
        Assert.Equal(expected, AsciiKeyMap.Type("Hi").Select(e => (e.Type, e.Code, e.Value)));
        Assert.Empty(AsciiKeyMap.Type(string.Empty));
    }

    [Fact]
    public void The_config_space_answers_each_selection_and_size_0_for_what_the_device_lacks()
    {
        var device = new InputDeviceConfig
        {
            Name = "test tablet",
            Serial = "SN1",
            Ids = new VirtioInputDevIds { BusType = 3, Vendor = 0x1234, Product = 0x5678, Version = 2 },
            Properties = [1],
        };
        device.EventCodes[VirtioInputEventType.Key] = [272, 330];
        device.EventCodes[VirtioInputEventType.Absolute] = [0, 1];
        device.AbsoluteAxes[1] = new VirtioInputAbsInfo { Min = 0, Max = 32767, Fuzz = 1, Flat = 2, Resolution = 3 };
        VirtioConfigSpace space = device.ToConfigSpace().Space;

        Assert.Equal(0, Select(space, VirtioInputConfigSelect.Unset, 0).Size);

        (int size, byte[] payload) = Select(space, VirtioInputConfigSelect.IdName, 0);
        Assert.Equal("test tablet", Encoding.ASCII.GetString(payload, 0, size));
        Assert.All(payload[size..], b => Assert.Equal(0, b));
        (size, payload) = Select(space, VirtioInputConfigSelect.IdSerial, 0);
        Assert.Equal("SN1", Encoding.ASCII.GetString(payload, 0, size));
        Assert.Equal(0, Select(space, VirtioInputConfigSelect.IdName, 1).Size);

        (size, payload) = Select(space, VirtioInputConfigSelect.IdDevIds, 0);
        Assert.Equal(8, size);
        Assert.Equal(new byte[] { 3, 0, 0x34, 0x12, 0x78, 0x56, 2, 0 }, payload[..8]);

        (size, payload) = Select(space, VirtioInputConfigSelect.PropertyBits, 0);
        Assert.Equal((1, (byte)0b10), (size, payload[0]));

        // EV_KEY: BTN_LEFT (272) and BTN_TOOL_PEN (330): bitmap up to byte 41.
        (size, payload) = Select(space, VirtioInputConfigSelect.EventBits, (byte)VirtioInputEventType.Key);
        Assert.Equal(42, size);
        Assert.Equal((byte)1, payload[34]);
        Assert.Equal((byte)(1 << 2), payload[41]);
        Assert.Equal(0, Select(space, VirtioInputConfigSelect.EventBits, (byte)VirtioInputEventType.Relative).Size);

        (size, payload) = Select(space, VirtioInputConfigSelect.AbsInfo, 1);
        Assert.Equal(20, size);
        VirtioInputAbsInfo info = MemoryMarshal.Read<VirtioInputAbsInfo>(payload);
        Assert.Equal((0u, 32767u, 1u, 2u, 3u), (info.Min, info.Max, info.Fuzz, info.Flat, info.Resolution));
        Assert.Equal(0, Select(space, VirtioInputConfigSelect.AbsInfo, 0).Size);
        Assert.Equal(0, Select(space, (VirtioInputConfigSelect)0x7f, 0).Size);
    }

    [Fact]
    public void A_name_longer_than_the_payload_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new InputDeviceConfig { Name = new string('n', 129) }.ToConfigSpace());
    }

    private static (int Size, byte[] Payload) Select(VirtioConfigSpace space, VirtioInputConfigSelect select, byte subsel)
    {
        space.WriteFromDriver(0, [(byte)select, subsel]);
        byte[] config = new byte[VirtioInputConfig.Size];
        space.Read(0, config);
        Assert.Equal((byte)select, config[0]);
        Assert.Equal(subsel, config[1]);
        return (config[2], config[VirtioInputConfig.PayloadOffset..]);
    }
}

/// <summary>The sample's device over vhost-user, driven by a model driver (no guest): events wait for buffers, the keyboard paces its keys, status events reach the source.</summary>
public sealed class InputSampleDeviceTests
{
    [Fact]
    public void Typed_events_wait_for_the_drivers_buffers_and_arrive_in_order_and_the_LED_state_follows_the_status_queue()
    {
        using var keys = new KeyboardSource("kbd", TimeSpan.Zero, NullLogger.Instance);
        using var rig = new InputDeviceRig(keys);

        // "Hi!" is 20 events; the driver posts 6 buffers, then one more per event it got.
        keys.Type("Hi!");
        List<VirtioInputEvent> expected = AsciiKeyMap.Type("Hi!");
        rig.PostEventBuffers(6);
        var got = new List<VirtioInputEvent>();
        for (int i = 0; i < 6; i++)
        {
            got.Add(rig.TakeEvent());
        }

        Assert.False(SpinWait.SpinUntil(() => rig.EventQueue.TryGetCompletion(out _), 200), "an event without a buffer");
        while (got.Count < expected.Count)
        {
            rig.PostEventBuffers(1);
            got.Add(rig.TakeEvent());
        }

        Assert.Equal(expected.Select(e => (e.Type, e.Code, e.Value)), got.Select(e => (e.Type, e.Code, e.Value)));
        Assert.Equal(0, keys.QueuedEvents);

        // Caps lock on, scroll lock on, caps lock off.
        foreach ((VirtioInputLed led, uint value, int state) in new[] { (VirtioInputLed.CapsLock, 1u, 2), (VirtioInputLed.ScrollLock, 1u, 6), (VirtioInputLed.CapsLock, 0u, 4) })
        {
            rig.SendStatus(new VirtioInputEvent(VirtioInputEventType.Led, (ushort)led, value));
            Assert.Equal(state, keys.LedState);
        }
    }

    [Fact]
    public void The_keyboard_sends_one_key_event_per_interval()
    {
        using var keys = new KeyboardSource("kbd", TimeSpan.FromMilliseconds(25), NullLogger.Instance);
        using var rig = new InputDeviceRig(keys);
        rig.PostEventBuffers(16);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        keys.Type("ab");
        var got = new List<VirtioInputEvent>();
        for (int i = 0; i < 8; i++)
        {
            got.Add(rig.TakeEvent());
        }

        // Four key events (press a, release a, press b, release b), each with its SYN, 25 ms apart: at least 75 ms.
        Assert.InRange(clock.ElapsedMilliseconds, 75, 10_000);
        Assert.Equal(AsciiKeyMap.Type("ab").Select(e => (e.Type, e.Code, e.Value)), got.Select(e => (e.Type, e.Code, e.Value)));
    }
}
