using System.Runtime.InteropServices;

namespace VhostUserBackend.IO;

/// <summary>
/// One buffer of a vectored transfer: the C <c>struct iovec</c> (16 bytes on 64-bit), as
/// <c>preadv</c>/<c>pwritev</c> and <see cref="IoUring"/> take it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVector
{
    /// <summary>The first byte (<c>iov_base</c>).</summary>
    public void* Base;

    /// <summary>The length in bytes (<c>iov_len</c>).</summary>
    public nuint Length;

    /// <summary>Creates a vector.</summary>
    /// <param name="start">The first byte.</param>
    /// <param name="length">The length in bytes.</param>
    public IoVector(void* start, nuint length)
    {
        Base = start;
        Length = length;
    }
}
