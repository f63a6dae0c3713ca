using Vhost;

namespace VhostUserBackend.Memory;

/// <summary>
/// A guest-physical or frontend-user address range that the current guest memory does not map
/// the way the access needs. Thrown instead of touching memory outside the mappings.
/// </summary>
public sealed class GuestMemoryException : VhostException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">Why the access failed.</param>
    /// <param name="address">The first address of the range.</param>
    /// <param name="length">The length of the range in bytes.</param>
    internal GuestMemoryException(GuestMemoryError reason, ulong address, ulong length)
        : base(FormatMessage(reason, address, length))
    {
        Reason = reason;
        Address = address;
        Length = length;
    }

    /// <summary>Why the access failed (named in the message).</summary>
    internal GuestMemoryError Reason { get; }

    /// <summary>The first address of the failed range (guest physical, or a front-end user address when a ring address could not be translated).</summary>
    public ulong Address { get; }

    /// <summary>The length of the failed range in bytes.</summary>
    public ulong Length { get; }

    private static string FormatMessage(GuestMemoryError reason, ulong address, ulong length) => reason switch
    {
        GuestMemoryError.AddressNotMapped => $"guest memory [0x{address:x}, +0x{length:x}) is not mapped by any region",
        GuestMemoryError.AddressOverflow => $"guest memory range 0x{address:x} + 0x{length:x} wraps past 2^64",
        GuestMemoryError.RangeNotContiguous => $"guest memory [0x{address:x}, +0x{length:x}) crosses a region boundary where one contiguous span is required",
        GuestMemoryError.UserAddressNotMapped => $"frontend user address [0x{address:x}, +0x{length:x}) is not inside any memory region",
        _ => $"guest memory access [0x{address:x}, +0x{length:x}) failed ({reason})",
    };
}
