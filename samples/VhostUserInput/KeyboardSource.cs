using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Vhost;
using VhostUserBackend.Devices.Input;

namespace VhostUserInput;

/// <summary>
/// A virtual US keyboard that types the text it is given (<see cref="Type"/>, from any thread): the
/// key events wait in a queue and an eventfd wakes the device's worker. Like a real keyboard it
/// does not flood the guest: one key press or release (with its SYN) per key interval, so a guest
/// reader keeps up (a burst overflows a guest evdev client's buffer, 64 events, and the kernel
/// drops what was queued); a timer signals the eventfd when the next one is due. It has the keys of
/// <see cref="AsciiKeyMap"/> and the num, caps and scroll lock LEDs, whose state the driver sets on
/// the status queue; each change is logged (<c>LED caps-lock on</c>).
/// </summary>
internal sealed class KeyboardSource : IInputSource, IDisposable
{
    private static readonly VirtioInputLed[] Leds = [VirtioInputLed.NumLock, VirtioInputLed.CapsLock, VirtioInputLed.ScrollLock];
    private readonly ConcurrentQueue<VirtioInputEvent> _queue = new();
    private readonly EventFd _ready = new(EventFdFlags.NonBlocking);
    private readonly ILogger _logger;
    private readonly Timer _timer;
    private readonly long _intervalTicks;
    private long _next;
    private int _leds;

    /// <summary>Creates the keyboard.</summary>
    /// <param name="name">The device name the guest sees.</param>
    /// <param name="keyInterval">The time between two key events (press or release); zero sends them as fast as the driver takes them.</param>
    /// <param name="logger">Logs LED changes.</param>
    public KeyboardSource(string name, TimeSpan keyInterval, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keyInterval, TimeSpan.Zero);
        _logger = logger;
        _intervalTicks = (long)(keyInterval.TotalSeconds * Stopwatch.Frequency);
        _timer = new Timer(static state => Wake((EventFd)state!), _ready, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        Config = new InputDeviceConfig
        {
            Name = name,
            Serial = "vhost-user-input-keyboard",
            Ids = new VirtioInputDevIds { BusType = InputDeviceConfig.BusVirtual, Vendor = 0, Product = 1, Version = 1 },
        };
        Config.EventCodes[VirtioInputEventType.Key] = [.. AsciiKeyMap.AllKeys.Select(k => (ushort)k).Order()];
        Config.EventCodes[VirtioInputEventType.Led] = [.. Leds.Select(l => (ushort)l)];
    }

    /// <inheritdoc/>
    public InputDeviceConfig Config { get; }

    /// <inheritdoc/>
    public SafeHandle ReadyHandle => _ready;

    /// <summary>The LEDs that are on, bit <c>LED_*</c> per LED.</summary>
    public int LedState => Volatile.Read(ref _leds);

    /// <summary>Key events queued and not yet taken by the device.</summary>
    public int QueuedEvents => _queue.Count;

    /// <summary>Queues the key events that type <paramref name="text"/> (any thread).</summary>
    /// <exception cref="ArgumentException">A character has no key (nothing is queued).</exception>
    public void Type(string text)
    {
        foreach (VirtioInputEvent e in AsciiKeyMap.Type(text))
        {
            _queue.Enqueue(e);
        }

        _ready.TrySignal();
    }

    /// <inheritdoc/>
    public int ReadEvents(Span<VirtioInputEvent> events)
    {
        _ready.TryRead(out _);
        long now = Stopwatch.GetTimestamp();
        if (_intervalTicks > 0 && now < _next)
        {
            // Not yet: the timer signals the eventfd when the next key event is due.
            _timer.Change(Stopwatch.GetElapsedTime(now, _next), Timeout.InfiniteTimeSpan);
            return 0;
        }

        int n = 0;
        while (n < events.Length && _queue.TryDequeue(out VirtioInputEvent e))
        {
            events[n++] = e;
            if (_intervalTicks > 0 && e.Type == VirtioInputEventType.Synchronization)
            {
                // One key event and its SYN per interval.
                _next = now + _intervalTicks;
                if (!_queue.IsEmpty)
                {
                    _timer.Change(Stopwatch.GetElapsedTime(now, _next), Timeout.InfiniteTimeSpan);
                }

                break;
            }
        }

        return n;
    }

    /// <inheritdoc/>
    public void WriteStatus(in VirtioInputEvent status)
    {
        if (status.Type != VirtioInputEventType.Led || status.Code >= 32)
        {
            if (status.Type != VirtioInputEventType.Synchronization)
            {
                _logger.LogDebug("status event type {Type} code {Code} value {Value} ignored", status.Type, status.Code, status.Value);
            }

            return;
        }

        int bit = 1 << status.Code;
        int old = _leds;
        int now = status.Value != 0 ? old | bit : old & ~bit;
        Volatile.Write(ref _leds, now);
        if (now != old)
        {
            _logger.LogInformation("LED {Led} {State}", LedName((VirtioInputLed)status.Code), status.Value != 0 ? "on" : "off");
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        _ready.Dispose();
    }

    private static void Wake(EventFd ready)
    {
        try
        {
            ready.TrySignal();
        }
        catch (ObjectDisposedException)
        {
            // Disposed while the callback was on its way.
        }
    }

    private static string LedName(VirtioInputLed led) => led switch
    {
        VirtioInputLed.NumLock => "num-lock",
        VirtioInputLed.CapsLock => "caps-lock",
        VirtioInputLed.ScrollLock => "scroll-lock",
        _ => led.ToString(),
    };
}
