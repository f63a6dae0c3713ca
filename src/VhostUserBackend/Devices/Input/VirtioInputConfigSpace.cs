using System.Runtime.InteropServices;
using System.Text;
using VhostUserBackend.Config;

namespace VhostUserBackend.Devices.Input;

/// <summary>
/// The config space of a virtio-input device, ready-made: declare the device's identity and its
/// evdev capabilities (the event codes per type, the absolute axes, the properties), return
/// <see cref="Space"/> from <see cref="IVhostUserBackend.ConfigSpace"/>, and the daemon answers the
/// driver's queries. The driver writes <c>select</c> and <c>subsel</c> (the only writable bytes),
/// then reads <c>size</c> and the payload; each write recomputes them (virtio spec 5.8.4).
/// </summary>
/// <remarks>
/// <para>What each selection answers: <see cref="VirtioInputConfigSelect.IdName"/> and
/// <see cref="VirtioInputConfigSelect.IdSerial"/> the strings; <see cref="VirtioInputConfigSelect.IdDevIds"/>
/// the bus, vendor, product and version; <see cref="VirtioInputConfigSelect.PropertyBits"/> (subsel 0)
/// the <c>INPUT_PROP_*</c> bitmap; <see cref="VirtioInputConfigSelect.EventBits"/> with subsel = an event
/// type the bitmap of its codes; <see cref="VirtioInputConfigSelect.AbsInfo"/> with subsel = an axis its
/// range. Anything else answers size 0, which tells the driver "none".</para>
/// <para>Declare everything before the daemon starts; the declarations are not synchronized with
/// the driver's queries.</para>
/// </remarks>
public sealed class VirtioInputConfigSpace
{
    private readonly byte[] _name;
    private readonly byte[] _serial;
    private readonly VirtioInputDevIds? _ids;
    private readonly Dictionary<VirtioInputEventType, ushort[]> _events = [];
    private readonly Dictionary<byte, VirtioInputAbsInfo> _axes = [];
    private ushort[] _properties = [];

    /// <summary>Creates the config space of a device called <paramref name="name"/>.</summary>
    /// <param name="name">The device name the guest shows (ASCII/UTF-8, at most 128 bytes), such as "dotnet-vhost keyboard".</param>
    /// <param name="serial">The serial (at most 128 bytes), or empty for none.</param>
    /// <param name="ids">The device ids (bus type, vendor, product, version), or <see langword="null"/> for none.</param>
    /// <exception cref="ArgumentException">A string is longer than 128 bytes.</exception>
    public VirtioInputConfigSpace(string name, string serial = "", VirtioInputDevIds? ids = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(serial);
        _name = Text(name, nameof(name));
        _serial = Text(serial, nameof(serial));
        _ids = ids;
        Space = new VirtioConfigSpace(VirtioInputConfig.Size).AllowWrites(VirtioInputConfig.SelectOffset, 2, Answer);
    }

    /// <summary>The config space to return from <see cref="IVhostUserBackend.ConfigSpace"/>.</summary>
    public VirtioConfigSpace Space { get; }

    /// <summary>Declares the codes the device reports for event type <paramref name="type"/> (the evdev <c>EVIOCGBIT</c> bitmap), replacing earlier ones.</summary>
    /// <param name="type">The event type (<see cref="VirtioInputEventType.Key"/>, <see cref="VirtioInputEventType.Absolute"/>...).</param>
    /// <param name="codes">The codes (each below 1024).</param>
    /// <returns>This config space, to chain declarations.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A code is 1024 or more.</exception>
    public VirtioInputConfigSpace WithEvents(VirtioInputEventType type, params ReadOnlySpan<ushort> codes)
    {
        CheckCodes(codes, nameof(codes));
        _events[type] = codes.ToArray();
        return this;
    }

    /// <summary>Declares absolute axis <paramref name="axis"/> (an <c>ABS_*</c> code) and its range; declare the axis in <see cref="WithEvents"/> for <see cref="VirtioInputEventType.Absolute"/> too.</summary>
    /// <param name="axis">The axis.</param>
    /// <param name="info">Its range, fuzz, flat and resolution.</param>
    /// <returns>This config space, to chain declarations.</returns>
    public VirtioInputConfigSpace WithAbsInfo(byte axis, in VirtioInputAbsInfo info)
    {
        _axes[axis] = info;
        return this;
    }

    /// <summary>Declares the device's input properties (<c>INPUT_PROP_*</c>, the evdev <c>EVIOCGPROP</c> bitmap).</summary>
    /// <param name="properties">The properties (each below 1024).</param>
    /// <returns>This config space, to chain declarations.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A property is 1024 or more.</exception>
    public VirtioInputConfigSpace WithProperties(params ReadOnlySpan<ushort> properties)
    {
        CheckCodes(properties, nameof(properties));
        _properties = properties.ToArray();
        return this;
    }

    private static byte[] Text(string text, string parameter)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > VirtioInputConfig.PayloadLength)
        {
            throw new ArgumentException($"a virtio-input config string is at most {VirtioInputConfig.PayloadLength} bytes, not {bytes.Length}", parameter);
        }

        return bytes;
    }

    private static void CheckCodes(ReadOnlySpan<ushort> codes, string parameter)
    {
        foreach (ushort code in codes)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(code, VirtioInputConfig.PayloadLength * 8, parameter);
        }
    }

    /// <summary>The driver wrote select/subsel: put the answer in size and the payload.</summary>
    private void Answer(Span<byte> config)
    {
        var answer = new VirtioInputConfig { Select = (VirtioInputConfigSelect)config[VirtioInputConfig.SelectOffset], Subsel = config[VirtioInputConfig.SubselOffset] };
        switch (answer.Select)
        {
            case VirtioInputConfigSelect.IdName when answer.Subsel == 0:
                answer.SetString(_name);
                break;
            case VirtioInputConfigSelect.IdSerial when answer.Subsel == 0:
                answer.SetString(_serial);
                break;
            case VirtioInputConfigSelect.IdDevIds when answer.Subsel == 0 && _ids is { } ids:
                answer.SetDevIds(ids);
                break;
            case VirtioInputConfigSelect.PropertyBits when answer.Subsel == 0:
                answer.SetBitmap(_properties);
                break;
            case VirtioInputConfigSelect.EventBits when _events.TryGetValue((VirtioInputEventType)answer.Subsel, out ushort[]? codes):
                answer.SetBitmap(codes);
                break;
            case VirtioInputConfigSelect.AbsInfo when _axes.TryGetValue(answer.Subsel, out VirtioInputAbsInfo info):
                answer.SetAbsInfo(info);
                break;
        }

        MemoryMarshal.Write(config, in answer);
    }
}
