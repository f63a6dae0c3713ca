using VhostUserNet;

namespace Vhost.Fuzz;

/// <summary>
/// `net-state`: bytes become a device state loaded into a net sample port (<see cref="NetPortState"/>,
/// what SET_DEVICE_STATE_FD + CHECK_DEVICE_STATE feed it on a migration destination). Allowed:
/// <see cref="InvalidDataException"/> (a state refused); a refused state must leave the port
/// untouched, and an accepted one must save back to a state that loads to the same counters and MACs.
/// </summary>
internal static class NetStateTarget
{
    private const int Port = 3;

    public static void Run(ReadOnlySpan<byte> input)
    {
        var table = new MacTable(64);
        var counters = new NetPortCounters { TxFrames = 11 };
        var state = new NetPortState(Port, counters, table);
        try
        {
            state.LoadState(new MemoryStream(input.ToArray(), writable: false));
        }
        catch (InvalidDataException)
        {
            if (counters.TxFrames != 11 || table.LearnedOn(Port).Count != 0)
            {
                throw new FuzzContractException("a refused net port state changed the port");
            }

            throw;
        }

        using var saved = new MemoryStream();
        state.SaveState(saved);
        (long[] first, ulong[] macs) = NetPortState.Parse(input, table.Capacity);
        (long[] again, ulong[] kept) = NetPortState.Parse(saved.ToArray(), table.Capacity);
        if (!first.AsSpan().SequenceEqual(again) || kept.Except(macs).Any() || kept.Length > macs.Length)
        {
            throw new FuzzContractException("a loaded net port state did not save back to the same counters and MACs");
        }
    }
}
