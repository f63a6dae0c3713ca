/// <summary>
/// The Linux <c>_IOC</c> encoding of ioctl request numbers (asm-generic/ioctl.h, used by x86_64
/// and aarch64): 8 bits number, 8 bits type, 14 bits argument size, 2 bits direction.
/// </summary>
/// <remarks>
/// Every member is a constant so request numbers built from it are compile-time constants too,
/// for example <c>Read | (0xAF &lt;&lt; TypeShift) | (0x00 &lt;&lt; NumberShift) | (8 &lt;&lt; SizeShift)</c>
/// is <c>_IOR(0xAF, 0x00, __u64)</c>. The helper methods compute the same values for tests.
/// </remarks>
internal static class IoctlEncoding
{
    internal const int NumberBits = 8;
    internal const int TypeBits = 8;
    internal const int SizeBits = 14;
    internal const int DirectionBits = 2;

    internal const int NumberShift = 0;
    internal const int TypeShift = NumberShift + NumberBits;
    internal const int SizeShift = TypeShift + TypeBits;
    internal const int DirectionShift = SizeShift + SizeBits;

    /// <summary><c>_IOC_NONE</c> shifted into place.</summary>
    internal const uint None = 0u << DirectionShift;

    /// <summary><c>_IOC_WRITE</c> shifted into place: userspace writes, the kernel reads.</summary>
    internal const uint Write = 1u << DirectionShift;

    /// <summary><c>_IOC_READ</c> shifted into place: the kernel writes, userspace reads.</summary>
    internal const uint Read = 2u << DirectionShift;

    /// <summary><c>_IOC_READ|_IOC_WRITE</c> shifted into place.</summary>
    internal const uint ReadWrite = Read | Write;

    /// <summary>The largest argument size the encoding can carry.</summary>
    internal const int MaxSize = (1 << SizeBits) - 1;

    /// <summary><c>_IOC(dir, type, nr, size)</c> with an unshifted direction (0..3).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field does not fit its bits; the parameter name says which.</exception>
    internal static uint Ioc(uint direction, uint type, uint number, uint size)
    {
        // Each check names the field that does not fit its bits of the _IOC encoding.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(direction, (1u << DirectionBits) - 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(type, (1u << TypeBits) - 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(number, (1u << NumberBits) - 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, (uint)MaxSize);

        return (direction << DirectionShift) | (type << TypeShift) | (number << NumberShift) | (size << SizeShift);
    }

    /// <summary><c>_IO(type, nr)</c>.</summary>
    internal static uint IO(uint type, uint number) => Ioc(0, type, number, 0);

    /// <summary><c>_IOR(type, nr, size)</c>.</summary>
    internal static uint IOR(uint type, uint number, uint size) => Ioc(2, type, number, size);

    /// <summary><c>_IOW(type, nr, size)</c>.</summary>
    internal static uint IOW(uint type, uint number, uint size) => Ioc(1, type, number, size);

    /// <summary><c>_IOWR(type, nr, size)</c>.</summary>
    internal static uint IOWR(uint type, uint number, uint size) => Ioc(3, type, number, size);
}
