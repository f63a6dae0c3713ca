using System.Runtime.InteropServices;

namespace VhostUserBackend.Virtio;

/// <summary>
/// One entry of a scatter/gather list, laid out as Linux's <c>struct iovec</c> (16 bytes on
/// 64-bit: the base address, then the length), so a span of them can be passed straight to
/// <c>readv</c>, <c>writev</c>, <c>preadv</c>, <c>pwritev</c>, <c>sendmsg</c> or io_uring. Filled
/// by <see cref="DescriptorChainReader.GetIovecs"/> and <see cref="DescriptorChainWriter.GetIovecs"/>
/// with host addresses inside guest memory mappings.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct Iovec
{
    /// <summary>The host address of the first byte (<c>iov_base</c>).</summary>
    public nint Base;

    /// <summary>The number of bytes (<c>iov_len</c>).</summary>
    public nuint Length;

    /// <summary>Creates an entry.</summary>
    /// <param name="baseAddress">The host address of the first byte.</param>
    /// <param name="length">The number of bytes.</param>
    public Iovec(nint baseAddress, nuint length)
    {
        Base = baseAddress;
        Length = length;
    }
}
