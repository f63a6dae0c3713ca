using System.Runtime.InteropServices;

namespace VhostUserBackend.Devices.Input;

/// <summary>The range of an absolute axis (<c>struct virtio_input_absinfo</c>, 20 bytes, little-endian), the answer to <see cref="VirtioInputConfigSelect.AbsInfo"/>.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioInputAbsInfo
{
    /// <summary>The size in bytes.</summary>
    public const int Size = 20;

    /// <summary>The smallest value (<c>min</c>).</summary>
    public uint Min;

    /// <summary>The largest value (<c>max</c>).</summary>
    public uint Max;

    /// <summary>The noise the driver may filter out (<c>fuzz</c>).</summary>
    public uint Fuzz;

    /// <summary>The dead zone around the centre (<c>flat</c>).</summary>
    public uint Flat;

    /// <summary>The resolution in units per millimetre (or per radian) (<c>res</c>).</summary>
    public uint Resolution;
}
