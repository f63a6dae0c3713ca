namespace VhostUserBackend.Memory;

/// <summary>Why an access to guest memory failed (<see cref="GuestMemoryException.Reason"/>).</summary>
internal enum GuestMemoryError
{
    /// <summary>No region maps the address (or part of the range falls in a hole between regions).</summary>
    AddressNotMapped = 1,

    /// <summary><c>address + length</c> wraps past 2^64.</summary>
    AddressOverflow = 2,

    /// <summary>The range is mapped but spans two regions, and the caller needs one contiguous span.</summary>
    RangeNotContiguous = 3,

    /// <summary>A frontend (VMM user) address is not inside any region.</summary>
    UserAddressNotMapped = 4,
}
