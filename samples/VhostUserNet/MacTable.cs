using System.Buffers.Binary;

namespace VhostUserNet;

/// <summary>
/// The switch's forwarding table: source MAC address to port, learned from transmitted frames.
/// Lock-free and allocation-free: open addressing over 64-bit entries (48-bit MAC, port + 1 in
/// the top 16 bits) updated with compare-and-swap, so the workers of every port share it.
/// </summary>
/// <remarks>
/// A MAC that moves to another port is updated on its next frame; a port whose front-end goes
/// away forgets its entries (<see cref="Forget"/>). When every slot of a probe window is taken,
/// the home slot is overwritten (the frame is then flooded until relearned): no aging is needed
/// for correctness.
/// </remarks>
internal sealed class MacTable
{
    private const int ProbeWindow = 8;
    private const ulong MacMask = 0xFFFF_FFFF_FFFFUL;
    private readonly long[] _entries;
    private readonly int _mask;

    /// <summary>Creates a table of <paramref name="size"/> entries.</summary>
    /// <param name="size">Entries (a power of two, at least <see cref="ProbeWindow"/>).</param>
    public MacTable(int size = 4096)
    {
        if (size < ProbeWindow || !int.IsPow2(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "the size must be a power of two, at least 8");
        }

        _entries = new long[size];
        _mask = size - 1;
    }

    /// <summary>Reads a 6-byte MAC address as a 48-bit key.</summary>
    /// <param name="mac">The address bytes.</param>
    /// <returns>The key.</returns>
    public static ulong Key(ReadOnlySpan<byte> mac) => ((ulong)BinaryPrimitives.ReadUInt16BigEndian(mac) << 32) | BinaryPrimitives.ReadUInt32BigEndian(mac[2..]);

    /// <summary>Whether a MAC is a group (multicast or broadcast) address.</summary>
    /// <param name="mac">The address bytes.</param>
    /// <returns>True for the I/G bit set.</returns>
    public static bool IsGroup(ReadOnlySpan<byte> mac) => (mac[0] & 1) != 0;

    /// <summary>Records that <paramref name="mac"/> was seen on <paramref name="port"/>.</summary>
    /// <param name="mac">A unicast MAC key.</param>
    /// <param name="port">The port (0..65534).</param>
    public void Learn(ulong mac, int port)
    {
        long entry = (long)((mac & MacMask) | ((ulong)(port + 1) << 48));
        int home = Hash(mac);
        int free = -1;
        for (int i = 0; i < ProbeWindow; i++)
        {
            int slot = (home + i) & _mask;
            long current = Volatile.Read(ref _entries[slot]);
            if (current == 0)
            {
                free = free < 0 ? slot : free;
                continue;
            }

            if (((ulong)current & MacMask) == mac)
            {
                if (current != entry)
                {
                    Interlocked.CompareExchange(ref _entries[slot], entry, current);
                }

                return;
            }
        }

        if (free >= 0 && Interlocked.CompareExchange(ref _entries[free], entry, 0) == 0)
        {
            return;
        }

        Volatile.Write(ref _entries[home], entry);
    }

    /// <summary>The port <paramref name="mac"/> was last seen on.</summary>
    /// <param name="mac">A unicast MAC key.</param>
    /// <returns>The port, or -1 when unknown.</returns>
    public int Lookup(ulong mac)
    {
        int home = Hash(mac);
        for (int i = 0; i < ProbeWindow; i++)
        {
            long current = Volatile.Read(ref _entries[(home + i) & _mask]);
            if (current != 0 && ((ulong)current & MacMask) == mac)
            {
                return (int)((ulong)current >> 48) - 1;
            }
        }

        return -1;
    }

    /// <summary>Forgets every MAC learned on <paramref name="port"/>.</summary>
    /// <param name="port">The port.</param>
    public void Forget(int port)
    {
        for (int i = 0; i < _entries.Length; i++)
        {
            long current = Volatile.Read(ref _entries[i]);
            if (current != 0 && (int)((ulong)current >> 48) - 1 == port)
            {
                Interlocked.CompareExchange(ref _entries[i], 0, current);
            }
        }
    }

    /// <summary>The MACs learned on <paramref name="port"/> (a snapshot: the table may change meanwhile).</summary>
    /// <param name="port">The port.</param>
    /// <returns>The MAC keys.</returns>
    public List<ulong> LearnedOn(int port)
    {
        var macs = new List<ulong>();
        for (int i = 0; i < _entries.Length; i++)
        {
            long current = Volatile.Read(ref _entries[i]);
            if (current != 0 && (int)((ulong)current >> 48) - 1 == port)
            {
                macs.Add((ulong)current & MacMask);
            }
        }

        return macs;
    }

    /// <summary>How many entries the table holds at most.</summary>
    public int Capacity => _entries.Length;

    private int Hash(ulong mac) => (int)((mac * 0x9E37_79B9_7F4A_7C15UL) >> 40) & _mask;
}
