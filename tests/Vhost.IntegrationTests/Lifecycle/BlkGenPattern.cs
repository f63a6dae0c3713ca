using System.Buffers.Binary;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// The data <c>blkgen</c> (tools/guest/blkgen.c, in the test guest) writes, so the host can check
/// an image block by block: block B, generation G of a run with a seed holds "VTBLKGEN", the
/// seed, B and G (little-endian u64 each), then u64 words i = 4.. of splitmix64(key + i) with
/// key = seed ^ B * 0x9E3779B97F4A7C15 ^ G * 0xC2B2AE3D27D4EB4F. A block therefore says which
/// write put it there, and any torn, misplaced or foreign data shows.
/// </summary>
internal static class BlkGenPattern
{
    /// <summary>What a block holds compared with the generation it should have.</summary>
    public enum State
    {
        /// <summary>Exactly the expected generation.</summary>
        Expected,

        /// <summary>Exactly an older generation of this block (a lost newer write, or an older write applied late).</summary>
        Stale,

        /// <summary>Exactly a newer generation of this block.</summary>
        Newer,

        /// <summary>All zero (never written).</summary>
        Zero,

        /// <summary>Anything else: torn, another block's data, another run's data.</summary>
        Corrupt,
    }

    private static ReadOnlySpan<byte> Magic => "VTBLKGEN"u8;

    /// <summary>Writes block <paramref name="block"/>, generation <paramref name="generation"/> into <paramref name="destination"/>.</summary>
    public static void Fill(Span<byte> destination, ulong seed, ulong block, ulong generation)
    {
        ulong key = seed ^ (block * 0x9E3779B97F4A7C15UL) ^ (generation * 0xC2B2AE3D27D4EB4FUL);
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], seed);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], block);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], generation);
        for (int i = 4; i < destination.Length / 8; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[(8 * i)..], SplitMix64(key + (ulong)i));
        }
    }

    /// <summary>Classifies <paramref name="data"/> as block <paramref name="block"/> that should hold <paramref name="expected"/>; <paramref name="generation"/> is the generation it does hold (0 when none).</summary>
    public static State Classify(ReadOnlySpan<byte> data, ulong seed, ulong block, ulong expected, out ulong generation)
    {
        generation = 0;
        if (!data.ContainsAnyExcept((byte)0))
        {
            return State.Zero;
        }

        if (!data.StartsWith(Magic)
            || BinaryPrimitives.ReadUInt64LittleEndian(data[8..]) != seed
            || BinaryPrimitives.ReadUInt64LittleEndian(data[16..]) != block)
        {
            return State.Corrupt;
        }

        ulong g = BinaryPrimitives.ReadUInt64LittleEndian(data[24..]);
        Span<byte> want = new byte[data.Length];
        Fill(want, seed, block, g);
        if (g == 0 || !data.SequenceEqual(want))
        {
            return State.Corrupt;
        }

        generation = g;
        return g == expected ? State.Expected : g < expected ? State.Stale : State.Newer;
    }

    private static ulong SplitMix64(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
