using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;

namespace Vhost.Fuzz;

/// <summary>
/// `shmem-map`: bytes become a shared memory configuration and a sequence of SHMEM_MAP /
/// SHMEM_UNMAP requests applied by the front-end's <see cref="VhostUserShmemRegions"/> (what a
/// back-end sends it). Layout: byte 0 = region count - 1 (low 2 bits), then one byte per region =
/// its size in pages (0 = not configured); then records of 26 bytes: op (bit 0 unmap, bit 1
/// writable), shmid, shm offset, fd offset, length (u64 each, little endian). The fd is a 16-page
/// memfd whose page i starts with byte i + 1. Allowed: <see cref="ArgumentException"/> per request
/// (the target goes on with the next). Contract: a refused request changes no mapping; after every
/// request the mappings lie inside their regions without overlap, and each mapped page shows the
/// memfd page it maps (shmem maps beyond the region would fault or corrupt the reservation here).
/// </summary>
internal static class ShmemMapTarget
{
    private const int MemFdPages = 16;
    private const int RecordBytes = 26;
    private const int MaxRecords = 64;

    public static void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1)
        {
            return;
        }

        ulong page = (ulong)Environment.SystemPageSize;
        int regions = (input[0] & 3) + 1;
        if (input.Length < 1 + regions)
        {
            return;
        }

        var config = new VhostUserShmemConfig { RegionCount = (uint)regions };
        for (int i = 0; i < regions; i++)
        {
            config.MemorySizes[i] = input[1 + i] * page;
        }

        using SafeFileHandle memfd = Fd.CreateMemFd("fuzz-shmem", (long)(MemFdPages * page));
        for (int p = 0; p < MemFdPages; p++)
        {
            Fd.PWrite(memfd, [(byte)(p + 1)], (long)((ulong)p * page));
        }

        using var shmem = new VhostUserShmemRegions(config);
        ReadOnlySpan<byte> records = input[(1 + regions)..];
        var fdPageOf = new Dictionary<(byte, ulong), ulong>();
        for (int r = 0; r < MaxRecords && records.Length >= RecordBytes; r++, records = records[RecordBytes..])
        {
            byte op = records[0];
            var map = new VhostUserShmemMap
            {
                ShmemId = records[1],
                ShmemOffset = BitConverter.ToUInt64(records[2..]),
                FdOffset = BitConverter.ToUInt64(records[10..]),
                Length = BitConverter.ToUInt64(records[18..]),
                Flags = (op & 2) != 0 ? VhostUserShmemMapFlags.Writable : VhostUserShmemMapFlags.None,
            };
            var before = shmem.Mappings;
            try
            {
                if ((op & 1) == 0)
                {
                    shmem.Map(map, memfd);
                    for (ulong at = 0; at < map.Length; at += page)
                    {
                        fdPageOf[(map.ShmemId, map.ShmemOffset + at)] = (map.FdOffset + at) / page;
                    }
                }
                else
                {
                    shmem.Unmap(map);
                }
            }
            catch (ArgumentException)
            {
                if (!before.SequenceEqual(shmem.Mappings))
                {
                    throw new FuzzContractException("a refused shmem request changed the mappings");
                }
            }

            Check(shmem, config, page, fdPageOf);
        }
    }

    private static unsafe void Check(VhostUserShmemRegions shmem, in VhostUserShmemConfig config, ulong page, Dictionary<(byte, ulong), ulong> fdPageOf)
    {
        var seen = new HashSet<(byte, ulong)>();
        foreach ((byte id, ulong offset, ulong length) in shmem.Mappings)
        {
            ulong size = config.MemorySizes[id];
            if (size == 0 || offset >= size || length > size - offset || length == 0)
            {
                throw new FuzzContractException($"mapping [0x{offset:x}, +0x{length:x}) lies outside region {id} (size 0x{size:x})");
            }

            byte* b = (byte*)shmem.BaseAddress(id);
            for (ulong at = offset; at < offset + length; at += page)
            {
                if (!seen.Add((id, at)))
                {
                    throw new FuzzContractException($"two mappings cover page 0x{at:x} of region {id}");
                }

                if (b[at] != (byte)(fdPageOf[(id, at)] + 1))
                {
                    throw new FuzzContractException($"page 0x{at:x} of region {id} does not show memfd page {fdPageOf[(id, at)]}");
                }
            }
        }
    }
}
