using System.Buffers.Binary;
using VhostUserBackend.Migration;

namespace VhostUserNet;

/// <summary>
/// A port's migratable state (DEVICE_STATE): its counters and the MACs the switch learned on it,
/// so the guest's traffic and statistics carry on at the destination.
/// </summary>
/// <remarks>
/// Layout, little-endian: the magic <c>VUNP</c>, a 16-bit version (1), 16 reserved bits (0), the
/// seven 64-bit counters of <see cref="NetPortCounters"/> in declaration order, a 32-bit MAC
/// count, then each MAC in its 6 wire bytes. A load checks all of it (magic, version, reserved
/// bits, counts within the table, no negative counter, no group address, no trailing byte) before
/// it changes anything.
/// </remarks>
internal sealed class NetPortState : IVhostUserDeviceState
{
    /// <summary>The format version this build writes and reads.</summary>
    public const ushort Version = 1;

    private const int CounterCount = 7;
    private const int HeaderSize = 8;
    private const int MacSize = 6;
    private readonly int _port;
    private readonly NetPortCounters _counters;
    private readonly MacTable _table;

    /// <summary>The state of port <paramref name="port"/>.</summary>
    /// <param name="port">The port's index in the switch.</param>
    /// <param name="counters">Its counters.</param>
    /// <param name="table">The switch's MAC table.</param>
    public NetPortState(int port, NetPortCounters counters, MacTable table)
    {
        _port = port;
        _counters = counters;
        _table = table;
    }

    /// <summary>The magic that starts a state.</summary>
    public static ReadOnlySpan<byte> Magic => "VUNP"u8;

    /// <inheritdoc/>
    public int MaxStateSize => FixedSize + (_table.Capacity * MacSize);

    private static int FixedSize => HeaderSize + (CounterCount * sizeof(long)) + sizeof(uint);

    /// <inheritdoc/>
    public void SaveState(Stream destination)
    {
        List<ulong> macs = _table.LearnedOn(_port);
        byte[] state = new byte[FixedSize + (macs.Count * MacSize)];
        Span<byte> s = state;
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], Version);
        long[] counters = Read(_counters);
        for (int i = 0; i < CounterCount; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(s[(HeaderSize + (i * sizeof(long)))..], counters[i]);
        }

        int at = HeaderSize + (CounterCount * sizeof(long));
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], (uint)macs.Count);
        at += sizeof(uint);
        foreach (ulong mac in macs)
        {
            BinaryPrimitives.WriteUInt16BigEndian(s[at..], (ushort)(mac >> 32));
            BinaryPrimitives.WriteUInt32BigEndian(s[(at + 2)..], (uint)mac);
            at += MacSize;
        }

        destination.Write(state);
    }

    /// <inheritdoc/>
    public void LoadState(Stream source)
    {
        (long[] counters, ulong[] macs) = Parse(ReadAll(source), _table.Capacity);
        NetPortCounters c = _counters;
        Volatile.Write(ref c.TxFrames, counters[0]);
        Volatile.Write(ref c.TxBytes, counters[1]);
        Volatile.Write(ref c.TxErrors, counters[2]);
        Volatile.Write(ref c.RxFrames, counters[3]);
        Volatile.Write(ref c.RxBytes, counters[4]);
        Volatile.Write(ref c.RxDropped, counters[5]);
        Volatile.Write(ref c.Announcements, counters[6]);
        foreach (ulong mac in macs)
        {
            _table.Learn(mac, _port);
        }
    }

    /// <summary>Checks and decodes a state (what <see cref="LoadState"/> applies; the fuzz target's entry).</summary>
    /// <param name="state">The bytes.</param>
    /// <param name="maxMacs">The most MACs it may carry.</param>
    /// <returns>The counters in declaration order and the MAC keys.</returns>
    /// <exception cref="InvalidDataException">The state is malformed or not a net port's.</exception>
    public static (long[] Counters, ulong[] Macs) Parse(ReadOnlySpan<byte> state, int maxMacs)
    {
        if (state.Length < FixedSize)
        {
            throw new InvalidDataException($"a net port state holds at least {FixedSize} bytes, this one {state.Length}");
        }

        if (!state[..4].SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a net port state (bad magic)");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(state[4..]);
        if (version != Version)
        {
            throw new InvalidDataException($"net port state version {version}; this build reads version {Version}");
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(state[6..]) != 0)
        {
            throw new InvalidDataException("net port state: reserved bits set");
        }

        long[] counters = new long[CounterCount];
        for (int i = 0; i < CounterCount; i++)
        {
            counters[i] = BinaryPrimitives.ReadInt64LittleEndian(state[(HeaderSize + (i * sizeof(long)))..]);
            if (counters[i] < 0)
            {
                throw new InvalidDataException($"net port state: counter {i} is negative");
            }
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(state[(FixedSize - sizeof(uint))..]);
        if (count > (uint)maxMacs || state.Length - FixedSize != (long)count * MacSize)
        {
            throw new InvalidDataException($"net port state: {count} MACs (at most {maxMacs}) in {state.Length - FixedSize} bytes");
        }

        ulong[] macs = new ulong[count];
        for (int i = 0; i < macs.Length; i++)
        {
            ReadOnlySpan<byte> mac = state.Slice(FixedSize + (i * MacSize), MacSize);
            if (MacTable.IsGroup(mac) || MacTable.Key(mac) == 0)
            {
                throw new InvalidDataException($"net port state: MAC {i} is not a unicast address");
            }

            macs[i] = MacTable.Key(mac);
        }

        return (counters, macs);
    }

    private static long[] Read(NetPortCounters c) =>
    [
        Volatile.Read(ref c.TxFrames), Volatile.Read(ref c.TxBytes), Volatile.Read(ref c.TxErrors),
        Volatile.Read(ref c.RxFrames), Volatile.Read(ref c.RxBytes), Volatile.Read(ref c.RxDropped),
        Volatile.Read(ref c.Announcements),
    ];

    private static byte[] ReadAll(Stream source)
    {
        using var copy = new MemoryStream();
        source.CopyTo(copy);
        return copy.ToArray();
    }
}
