namespace VhostUserBackend.Devices.Blk;

/// <summary>
/// What is wrong with a virtio-blk request (<see cref="VirtioBlkRequest"/>). Every error but
/// <see cref="NoStatusByte"/> is answered with the status <see cref="VirtioBlkRequest.ToStatus"/>
/// gives; a request without a status byte is returned with a used length of 0.
/// </summary>
public enum VirtioBlkRequestError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The chain has no device-writable byte for the status: nothing can be reported; complete it with length 0.</summary>
    NoStatusByte,

    /// <summary>The device-readable bytes are fewer than the 16-byte header (a short chain, or the header in a device-writable buffer): IOERR.</summary>
    HeaderTooShort,

    /// <summary>The data length is not a whole number of 512-byte sectors: IOERR.</summary>
    NotWholeSectors,

    /// <summary>The sectors reach past the capacity, or the range overflows 64 bits: IOERR.</summary>
    OutOfRange,

    /// <summary>A DISCARD, WRITE_ZEROES or SECURE_ERASE payload that is not 1 to the allowed number of 16-byte segments: IOERR.</summary>
    BadSegmentCount,

    /// <summary>A segment of more sectors than the device allows (<c>max_discard_sectors</c> and the like): IOERR.</summary>
    TooManySectors,

    /// <summary>A segment flag the request type does not allow (UNMAP on DISCARD, an unknown bit): UNSUPP.</summary>
    UnsupportedFlags,
}
