namespace Vhost.Vdpa;

/// <summary>The IOVA range a vDPA device can translate (<c>struct vhost_vdpa_iova_range</c>), both ends inclusive.</summary>
public readonly struct VdpaIovaRange
{
    /// <summary>Describes a range.</summary>
    /// <param name="first">The first usable IOVA.</param>
    /// <param name="last">The last usable IOVA.</param>
    public VdpaIovaRange(ulong first, ulong last)
    {
        First = first;
        Last = last;
    }

    /// <summary>The first usable IOVA.</summary>
    public ulong First { get; }

    /// <summary>The last usable IOVA.</summary>
    public ulong Last { get; }

    /// <summary>Whether <c>[iova, iova + size)</c> (size &gt; 0) lies inside the range.</summary>
    /// <param name="iova">The first address.</param>
    /// <param name="size">The length in bytes.</param>
    /// <returns><see langword="true"/> when it fits.</returns>
    public bool Contains(ulong iova, ulong size)
        => size != 0 && iova >= First && iova <= Last && size - 1 <= Last - iova;
}
