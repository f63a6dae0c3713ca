using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Vhost.IntegrationTests.Lifecycle;

/// <summary>
/// Queue 0 of a vhost-user inflight region (INFLIGHT_SHMFD) read from outside, as the spec lays it
/// out (read here byte by byte, not through the library's structs). Split layout: a 16-byte
/// header (features u64, version u16, desc_num u16, last_batch_head u16, used_idx u16), then
/// desc_num 16-byte entries (inflight u8, 5 bytes padding, next u16, counter u64). Packed layout:
/// a 32-byte header (features u64, version u16, desc_num u16, free_head u16, old_free_head u16,
/// used_idx u16, old_used_idx u16, used_wrap_counter u8, old_used_wrap_counter u8, padding), then
/// desc_num 32-byte entries (inflight u8, padding, next u16, last u16, num u16, counter u64, id u16,
/// flags u16, len u32, addr u64); a request in flight is an entry marked inflight (the head of its
/// chain of entries), listed here by its entry index. The test finds
/// the region among QEMU's file descriptors: QEMU keeps the memfd the back-end gave it at
/// GET_INFLIGHT_FD for the device's whole life and hands it to every new back-end.
/// </summary>
internal sealed class InflightRegionView
{
    private InflightRegionView(ushort version, ushort descriptors, ushort lastBatchHead, ushort usedIndex, IReadOnlyList<(ushort Head, ulong Counter)> inflight)
    {
        Version = version;
        Descriptors = descriptors;
        LastBatchHead = lastBatchHead;
        UsedIndex = usedIndex;
        Inflight = inflight;
    }

    /// <summary>The layout version (1).</summary>
    public ushort Version { get; }

    /// <summary>Descriptor entries (the queue size).</summary>
    public ushort Descriptors { get; }

    /// <summary>Split: the head of the last completion the back-end started; packed: the free list's head.</summary>
    public ushort LastBatchHead { get; }

    /// <summary>Whether the region was read in the packed layout.</summary>
    public bool Packed { get; private init; }

    /// <summary>The used index the back-end last recorded.</summary>
    public ushort UsedIndex { get; }

    /// <summary>The heads marked inflight with their fetch counters, in fetch order.</summary>
    public IReadOnlyList<(ushort Head, ulong Counter)> Inflight { get; }

    /// <summary>The fetch counters of the heads in flight span more values than there are heads: requests fetched after some of them completed before them.</summary>
    public bool ShowsOutOfOrderCompletion => Inflight.Count > 1 && Inflight[^1].Counter - Inflight[0].Counter + 1 > (ulong)Inflight.Count;

    /// <summary>The path (<c>/proc/PID/fd/N</c>) of the inflight memfd QEMU holds, or null when it holds none.</summary>
    public static string? FindInProcess(int pid)
    {
        var found = new List<string>();
        foreach (string fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("/memfd:vhost-inflight", StringComparison.Ordinal))
                {
                    found.Add(fd);
                }
            }
            catch (IOException)
            {
                // The fd closed meanwhile.
            }
        }

        return found.Count switch
        {
            0 => null,
            1 => found[0],
            _ => throw new InvalidOperationException($"process {pid} holds {found.Count} inflight regions: {string.Join(", ", found)}"),
        };
    }

    /// <summary>Reads queue 0 of the region, in the split or the packed layout.</summary>
    public static InflightRegionView Read(SafeFileHandle region, bool packed = false)
    {
        int headerSize = packed ? 32 : 16;
        int entrySize = packed ? 32 : 16;
        Span<byte> header = stackalloc byte[headerSize];
        if (RandomAccess.Read(region, header, 0) != header.Length)
        {
            throw new InvalidOperationException("the inflight region is shorter than its header");
        }

        ushort descriptors = BinaryPrimitives.ReadUInt16LittleEndian(header[10..]);
        byte[] entries = new byte[entrySize * descriptors];
        if (RandomAccess.Read(region, entries, headerSize) != entries.Length)
        {
            throw new InvalidOperationException($"the inflight region is shorter than {descriptors} entries");
        }

        var inflight = new List<(ushort Head, ulong Counter)>();
        for (int i = 0; i < descriptors; i++)
        {
            ReadOnlySpan<byte> e = entries.AsSpan(entrySize * i, entrySize);
            if (e[0] > 1)
            {
                throw new InvalidOperationException($"inflight entry {i} has inflight byte {e[0]}");
            }

            if (e[0] == 1)
            {
                inflight.Add(((ushort)i, BinaryPrimitives.ReadUInt64LittleEndian(e[8..])));
            }
        }

        inflight.Sort((a, b) => a.Counter.CompareTo(b.Counter));
        return new InflightRegionView(
            BinaryPrimitives.ReadUInt16LittleEndian(header[8..]),
            descriptors,
            BinaryPrimitives.ReadUInt16LittleEndian(header[12..]),
            BinaryPrimitives.ReadUInt16LittleEndian(header[(packed ? 16 : 14)..]),
            inflight)
        {
            Packed = packed,
        };
    }

    /// <summary>For messages: the header and the heads in flight with their counters.</summary>
    public override string ToString() =>
        $"{(Packed ? "packed" : "split")} version {Version}, {Descriptors} entries, {(Packed ? "free head" : "last batch head")} {LastBatchHead}, used index {UsedIndex}, {Inflight.Count} in flight"
        + (Inflight.Count == 0 ? string.Empty : $" (head:counter {string.Join(' ', Inflight.Select(x => $"{x.Head}:{x.Counter}"))})");
}
