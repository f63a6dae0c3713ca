using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Input;

/// <summary>
/// One input event (<c>struct virtio_input_event</c>, VIRTIO 1.3 §5.8.6.1): 8 bytes, little-endian.
/// The device writes them into the event queue's buffers; the driver sends them (LEDs, sounds) on
/// the status queue.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioInputEvent
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 8;

    /// <summary>The event type (<c>type</c>).</summary>
    public VirtioInputEventType Type;

    /// <summary>The code within the type (<c>code</c>): a <c>KEY_*</c>, <c>REL_*</c>, <c>ABS_*</c>, <c>LED_*</c> number of Linux's input-event-codes.h.</summary>
    public ushort Code;

    /// <summary>The value (<c>value</c>): 1 pressed, 0 released for keys; a delta or position for axes.</summary>
    public uint Value;

    /// <summary>Creates an event.</summary>
    /// <param name="type">The type.</param>
    /// <param name="code">The code.</param>
    /// <param name="value">The value.</param>
    public VirtioInputEvent(VirtioInputEventType type, ushort code, uint value)
    {
        Type = type;
        Code = code;
        Value = value;
    }
}
