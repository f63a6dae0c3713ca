using System.Runtime.InteropServices;
using VhostUserBackend.Devices.Input;

namespace VhostUserInput;

/// <summary>
/// Where a <see cref="VirtioInputDevice"/>'s events come from and its status events go: the
/// virtual keyboard (<see cref="KeyboardSource"/>) or a host evdev (<see cref="EvdevSource"/>).
/// Every member but <see cref="Config"/> is called on the device's worker thread and must not block.
/// </summary>
internal interface IInputSource
{
    /// <summary>What the device reports in its config space.</summary>
    InputDeviceConfig Config { get; }

    /// <summary>A non-blocking fd that becomes readable when events may be there (watched edge-triggered by the worker).</summary>
    SafeHandle ReadyHandle { get; }

    /// <summary>Takes the events that are there now (never waits): fills <paramref name="events"/> from the start and returns the count.</summary>
    /// <exception cref="IOException">The source is gone (the evdev was unplugged).</exception>
    int ReadEvents(Span<VirtioInputEvent> events);

    /// <summary>An event the driver sent on the status queue (an LED, a sound, a repeat setting, their SYN).</summary>
    void WriteStatus(in VirtioInputEvent status);
}
