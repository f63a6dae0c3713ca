namespace VhostUserBackend.IO;

/// <summary>The <c>mode</c> of <c>fallocate(2)</c> (<c>FALLOC_FL_*</c>).</summary>
[Flags]
public enum FallocateMode
{
    /// <summary>Allocate (and extend the file when the range passes its end).</summary>
    None = 0,

    /// <summary><c>FALLOC_FL_KEEP_SIZE</c>: never change the file size.</summary>
    KeepSize = 0x01,

    /// <summary><c>FALLOC_FL_PUNCH_HOLE</c>: deallocate the range (with <see cref="KeepSize"/>).</summary>
    PunchHole = 0x02,

    /// <summary><c>FALLOC_FL_ZERO_RANGE</c>: make the range read as zeroes.</summary>
    ZeroRange = 0x10,
}
