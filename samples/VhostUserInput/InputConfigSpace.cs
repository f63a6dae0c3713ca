using System.Runtime.InteropServices;
using System.Text;
using VhostUserBackend.Devices.Input;

namespace VhostUserInput;

/// <summary>
/// The virtio-input config space (VIRTIO 1.3 §5.8.4) of one device: the driver writes
/// <c>select</c> and <c>subsel</c> (offsets 0 and 1), then reads <c>size</c> and the union, which
/// this class fills from an <see cref="InputDeviceConfig"/> at each write. Used on the control
/// thread only (GET_CONFIG, SET_CONFIG).
/// </summary>
/// <remarks>QEMU's vhost-user-input front-end writes the whole 136 bytes at offset 0 (SET_CONFIG),
/// with its stale copy of the rest; only <c>select</c> and <c>subsel</c> are taken from a write.</remarks>
internal sealed class InputConfigSpace
{
    private readonly InputDeviceConfig _device;
    private VirtioInputConfig _config;

    public InputConfigSpace(InputDeviceConfig device)
    {
        _device = device;
        if (Encoding.UTF8.GetByteCount(device.Name) > VirtioInputConfig.PayloadLength || Encoding.UTF8.GetByteCount(device.Serial) > VirtioInputConfig.PayloadLength)
        {
            throw new ArgumentException($"a virtio-input name or serial is at most {VirtioInputConfig.PayloadLength} bytes", nameof(device));
        }
    }

    /// <summary>The current selection.</summary>
    public VirtioInputConfigSelect Select => _config.Select;

    /// <summary>The current sub-selection.</summary>
    public byte Subsel => _config.Subsel;

    /// <summary>Copies config space bytes from <paramref name="offset"/> (GET_CONFIG).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the 136 bytes.</exception>
    public void Read(uint offset, Span<byte> data)
    {
        CheckRange(offset, data.Length);
        MemoryMarshal.AsBytes(new ReadOnlySpan<VirtioInputConfig>(in _config)).Slice((int)offset, data.Length).CopyTo(data);
    }

    /// <summary>Takes <c>select</c> and <c>subsel</c> from a write that covers them (SET_CONFIG) and refills the answer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the 136 bytes.</exception>
    public void Write(uint offset, ReadOnlySpan<byte> data)
    {
        CheckRange(offset, data.Length);
        for (int i = 0; i < data.Length; i++)
        {
            switch (offset + (uint)i)
            {
                case VirtioInputConfig.SelectOffset:
                    _config.Select = (VirtioInputConfigSelect)data[i];
                    break;
                case VirtioInputConfig.SubselOffset:
                    _config.Subsel = data[i];
                    break;
            }
        }

        Refill();
    }

    private static void CheckRange(uint offset, int length)
    {
        if (offset > VirtioInputConfig.Size || length > VirtioInputConfig.Size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"{length} bytes at {offset} are outside the {VirtioInputConfig.Size}-byte virtio-input config space");
        }
    }

    private void Refill()
    {
        switch (_config.Select)
        {
            case VirtioInputConfigSelect.IdName when _config.Subsel == 0:
                _config.SetString(Encoding.UTF8.GetBytes(_device.Name));
                break;
            case VirtioInputConfigSelect.IdSerial when _config.Subsel == 0:
                _config.SetString(Encoding.UTF8.GetBytes(_device.Serial));
                break;
            case VirtioInputConfigSelect.IdDevIds when _config.Subsel == 0:
                _config.SetDevIds(_device.Ids);
                break;
            case VirtioInputConfigSelect.PropertyBits when _config.Subsel == 0:
                _config.SetBitmap(_device.Properties);
                break;
            case VirtioInputConfigSelect.EventBits when _device.EventCodes.TryGetValue((VirtioInputEventType)_config.Subsel, out ushort[]? codes):
                _config.SetBitmap(codes);
                break;
            case VirtioInputConfigSelect.AbsInfo when _device.AbsoluteAxes.TryGetValue(_config.Subsel, out VirtioInputAbsInfo info):
                _config.SetAbsInfo(info);
                break;
            default:
                // Unset, an unknown selection, a type or axis the device does not have: size 0.
                _config.Clear();
                break;
        }
    }
}
