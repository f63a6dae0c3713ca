using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Input;

/// <summary>The device ids (<c>struct virtio_input_devids</c>, 8 bytes, little-endian), the answer to <see cref="VirtioInputConfigSelect.IdDevIds"/>; as Linux's <c>struct input_id</c>.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioInputDevIds
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 8;

    /// <summary>The bus type (<c>bustype</c>, a <c>BUS_*</c> number; 0x06 is BUS_VIRTUAL).</summary>
    public ushort BusType;

    /// <summary>The vendor id (<c>vendor</c>).</summary>
    public ushort Vendor;

    /// <summary>The product id (<c>product</c>).</summary>
    public ushort Product;

    /// <summary>The version (<c>version</c>).</summary>
    public ushort Version;
}
