using VhostUserBackend.Devices.Input;

namespace VhostUserInput;

/// <summary>
/// What a virtio-input device tells the driver about itself through its config space: name,
/// serial, ids, properties, the codes of each event type it sends, and the range of each absolute
/// axis. The keyboard builds one by hand; the evdev pass-through fills one from the host device's
/// ioctls (<see cref="EvdevSource"/>).
/// </summary>
internal sealed class InputDeviceConfig
{
    /// <summary><c>BUS_VIRTUAL</c>.</summary>
    public const ushort BusVirtual = 0x06;

    /// <summary>The name (<see cref="VirtioInputConfigSelect.IdName"/>), ASCII or UTF-8, at most 128 bytes.</summary>
    public required string Name { get; init; }

    /// <summary>The serial (<see cref="VirtioInputConfigSelect.IdSerial"/>); empty for none.</summary>
    public string Serial { get; init; } = string.Empty;

    /// <summary>The ids (<see cref="VirtioInputConfigSelect.IdDevIds"/>).</summary>
    public VirtioInputDevIds Ids { get; init; }

    /// <summary>The input properties (<c>INPUT_PROP_*</c>, <see cref="VirtioInputConfigSelect.PropertyBits"/>).</summary>
    public ushort[] Properties { get; init; } = [];

    /// <summary>The codes of each event type the device sends or accepts (<see cref="VirtioInputConfigSelect.EventBits"/>, subsel = type); types without codes are absent.</summary>
    public Dictionary<VirtioInputEventType, ushort[]> EventCodes { get; } = [];

    /// <summary>The range of each absolute axis (<see cref="VirtioInputConfigSelect.AbsInfo"/>, subsel = axis).</summary>
    public Dictionary<byte, VirtioInputAbsInfo> AbsoluteAxes { get; } = [];

    /// <summary>The virtio-input config space that answers the driver's queries from this description.</summary>
    /// <exception cref="ArgumentException">The name or serial is longer than 128 bytes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A code or property is 1024 or more.</exception>
    public VirtioInputConfigSpace ToConfigSpace()
    {
        var space = new VirtioInputConfigSpace(Name, Serial, Ids).WithProperties(Properties);
        foreach ((VirtioInputEventType type, ushort[] codes) in EventCodes)
        {
            space.WithEvents(type, codes);
        }

        foreach ((byte axis, VirtioInputAbsInfo info) in AbsoluteAxes)
        {
            space.WithAbsInfo(axis, info);
        }

        return space;
    }

    /// <summary>The codes set in a little-endian bitmap (as the evdev ioctls return them).</summary>
    public static ushort[] CodesOf(ReadOnlySpan<byte> bitmap)
    {
        var codes = new List<ushort>();
        for (int i = 0; i < bitmap.Length * 8; i++)
        {
            if ((bitmap[i >> 3] & (1 << (i & 7))) != 0)
            {
                codes.Add((ushort)i);
            }
        }

        return [.. codes];
    }
}
