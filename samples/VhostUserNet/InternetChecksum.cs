using System.Buffers.Binary;

namespace VhostUserNet;

/// <summary>The Internet checksum (RFC 1071): a ones'-complement sum of big-endian 16-bit words.</summary>
internal static class InternetChecksum
{
    /// <summary>Adds <paramref name="data"/> to a running 32-bit sum (an odd last byte is padded with zero).</summary>
    /// <param name="data">The bytes.</param>
    /// <param name="sum">The sum so far.</param>
    /// <returns>The new (unfolded) sum.</returns>
    public static ulong Add(ReadOnlySpan<byte> data, ulong sum = 0)
    {
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }

        if (i < data.Length)
        {
            sum += (ulong)data[i] << 8;
        }

        return sum;
    }

    /// <summary>Folds a sum to 16 bits and complements it: the value to store in a checksum field.</summary>
    /// <param name="sum">The sum.</param>
    /// <returns>The checksum.</returns>
    public static ushort Finish(ulong sum)
    {
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    /// <summary>The checksum of <paramref name="data"/>.</summary>
    /// <param name="data">The bytes (with their checksum field zeroed, to compute it; as is, to verify: 0 means valid).</param>
    /// <returns>The checksum.</returns>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(data));
}
