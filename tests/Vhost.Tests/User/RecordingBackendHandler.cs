using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.Tests.User;

/// <summary>A back-end handler that records every call, keeps the fds it receives, and can be told to fail.</summary>
internal sealed class RecordingBackendHandler : IVhostUserBackendRequestHandler, IDisposable
{
    public const ulong OfferedFeatures = (ulong)VhostUserVirtioFeatures.ProtocolFeatures | (ulong)(VirtioFeatures.AccessPlatform | VirtioFeatures.Version1 | VirtioFeatures.RingPacked) | 0x3;

    public List<string> Calls { get; } = [];

    public List<SafeFileHandle> Fds { get; } = [];

    public VhostUserProtocolFeatures Offered { get; set; } = VhostUserProtocolFeatures.AllKnown & ~VhostUserProtocolFeatures.ReplyAck;

    public ulong Features { get; set; } = OfferedFeatures;

    /// <summary>When set, the next handler call throws a VhostException with this errno.</summary>
    public Errno? FailNext { get; set; }

    public VhostUserBackendChannel? Channel { get; private set; }

    public SafeFileHandle? ReturnFd { get; set; }

    public string Last => Calls[^1];

    private void Record(string call)
    {
        lock (Calls)
        {
            Calls.Add(call);
        }

        if (FailNext is { } errno)
        {
            FailNext = null;
            throw new VhostException(errno, call);
        }
    }

    private void Keep(ReceivedFds fds)
    {
        for (int i = 0; i < fds.Count; i++)
        {
            Fds.Add(fds.Take(i));
        }
    }

    private SafeFileHandle Give() => ReturnFd is { } fd ? Fd.Duplicate(fd) : TestFds.MemFd(8192, "returned");

    public ulong GetFeatures() { Record("GetFeatures"); return Features; }
    public void SetFeatures(ulong features) => Record($"SetFeatures 0x{features:x}");
    public void SetOwner() => Record("SetOwner");
    public void ResetOwner() => Record("ResetOwner");
    public VhostUserProtocolFeatures GetProtocolFeatures() { Record("GetProtocolFeatures"); return Offered; }
    public void SetProtocolFeatures(VhostUserProtocolFeatures features) => Record($"SetProtocolFeatures 0x{(ulong)features:x}");

    public void SetMemoryTable(ReadOnlySpan<VhostUserMemoryRegion> regions, ReceivedFds fds)
    {
        Record("SetMemoryTable " + string.Join(",", regions.ToArray().Select(r => $"{r.GuestPhysicalAddress:x}/{r.MemorySize:x}/{r.UserAddress:x}/{r.MmapOffset:x}")));
        Keep(fds);
    }

    public void SetLogBase(in VhostUserLog log, ReceivedFds fds) { Record($"SetLogBase {log.MmapSize:x}/{log.MmapOffset:x}"); Keep(fds); }
    public void SetLogFd(ReceivedFds fds) { Record("SetLogFd"); Keep(fds); }
    public void SetVringNum(int index, uint num) => Record($"SetVringNum {index} {num}");
    public void SetVringAddress(in VhostUserVringAddress a) => Record($"SetVringAddress {a.Index} {a.Flags} {a.DescriptorTableAddress:x} {a.UsedRingAddress:x} {a.AvailableRingAddress:x} {a.LogAddress:x}");
    public void SetVringBase(int index, uint baseValue) => Record($"SetVringBase {index} {baseValue}");
    public uint GetVringBase(int index) { Record($"GetVringBase {index}"); return 0x1234 + (uint)index; }

    public uint GetVringBaseSkipDrain(int index) { Record($"GetVringBaseSkipDrain {index}"); return 0x5678 + (uint)index; }
    public void SetVringKick(int index, ReceivedFds fds) { Record($"SetVringKick {index} {fds.Count}"); Keep(fds); }
    public void SetVringCall(int index, ReceivedFds fds) { Record($"SetVringCall {index} {fds.Count}"); Keep(fds); }
    public void SetVringError(int index, ReceivedFds fds) { Record($"SetVringError {index} {fds.Count}"); Keep(fds); }
    public ulong GetQueueNum() { Record("GetQueueNum"); return 4; }
    public void SetVringEnable(int index, bool enable) => Record($"SetVringEnable {index} {enable}");
    public void SendRarp(ReadOnlySpan<byte> mac) => Record("SendRarp " + Convert.ToHexString(mac));
    public void NetSetMtu(ulong mtu) => Record($"NetSetMtu {mtu}");
    public void SetBackendRequestFd(VhostUserBackendChannel channel) { Record("SetBackendRequestFd"); Channel = channel; }
    public void IotlbMessage(in VhostUserIotlbMessage m) => Record($"IotlbMessage {m.Type} {m.Iova:x} {m.Size:x} {m.UserAddress:x} {m.Permission}");
    public void SetVringEndianness(int index, VringEndianness e) => Record($"SetVringEndian {index} {e}");

    public void GetConfig(uint offset, VhostUserConfigFlags flags, Span<byte> data)
    {
        Record($"GetConfig {offset} {data.Length} {flags}");
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(offset + i);
        }
    }

    public void SetConfig(uint offset, VhostUserConfigFlags flags, ReadOnlySpan<byte> data) => Record($"SetConfig {offset} {flags} {Convert.ToHexString(data)}");
    public byte[] CreateCryptoSession(ReadOnlySpan<byte> session) { Record("CreateCryptoSession " + Convert.ToHexString(session)); return [.. session, 0x42]; }
    public void CloseCryptoSession(ulong sessionId) => Record($"CloseCryptoSession {sessionId}");
    public SafeFileHandle PostcopyAdvise() { Record("PostcopyAdvise"); return Give(); }
    public void PostcopyListen() => Record("PostcopyListen");
    public void PostcopyEnd() => Record("PostcopyEnd");

    /// <summary>Postcopy: the back-end's mapping base for a region (null = not provided).</summary>
    public Func<VhostUserMemoryRegion, ulong?>? PostcopyBase { get; set; }

    /// <summary>GET_INFLIGHT_FD answers "no region" (mmap size 0, no fd).</summary>
    public bool NoInflightRegion { get; set; }

    /// <summary>The shared memory configuration GET_SHMEM_CONFIG returns (null = the default one).</summary>
    public VhostUserShmemConfig? ShmemConfig { get; set; }

    public bool TryGetPostcopyMappingAddress(in VhostUserMemoryRegion region, out ulong mappingAddress)
    {
        ulong? b = PostcopyBase?.Invoke(region);
        mappingAddress = b ?? 0;
        return b is not null;
    }

    public void PostcopyMemoryAcknowledged() => Record("PostcopyMemoryAcknowledged");

    public SafeFileHandle GetInflightFd(in VhostUserInflight request, out VhostUserInflight reply)
    {
        Record($"GetInflightFd {request.QueueCount} {request.QueueSize}");
        if (NoInflightRegion)
        {
            reply = request with { MmapSize = 0 };
            return null!;
        }

        reply = request with { MmapSize = (ulong)(request.QueueCount * VhostUserInflightSplitQueue.RegionSize(request.QueueSize)), MmapOffset = 0 };
        return Give();
    }

    public void SetInflightFd(in VhostUserInflight inflight, ReceivedFds fds) { Record($"SetInflightFd {inflight.MmapSize:x} {inflight.QueueCount} {inflight.QueueSize}"); Keep(fds); }
    public void GpuSetSocket(ReceivedFds fds) { Record("GpuSetSocket"); Keep(fds); }
    public void ResetDevice() => Record("ResetDevice");
    public void VringKick(int index) => Record($"VringKick {index}");
    public ulong GetMaxMemorySlots() { Record("GetMaxMemorySlots"); return 509; }
    public void AddMemoryRegion(in VhostUserMemoryRegion r, ReceivedFds fds) { Record($"AddMemoryRegion {r.GuestPhysicalAddress:x}/{r.MemorySize:x}"); Keep(fds); }
    public void RemoveMemoryRegion(in VhostUserMemoryRegion r) => Record($"RemoveMemoryRegion {r.GuestPhysicalAddress:x}/{r.MemorySize:x}");
    public void SetStatus(byte status) => Record($"SetStatus {status}");
    public byte GetStatus() { Record("GetStatus"); return 0xF; }
    public SafeFileHandle? GetSharedObject(Guid uuid) { Record($"GetSharedObject {uuid}"); return Give(); }

    public SafeFileHandle? SetDeviceStateFd(VhostUserTransferDirection direction, VhostUserTransferPhase phase, ReceivedFds fds)
    {
        Record($"SetDeviceStateFd {direction} {phase}");
        Keep(fds);
        return ReturnFd is null ? null : Give();
    }

    public void CheckDeviceState() => Record("CheckDeviceState");

    public VhostUserShmemConfig GetShmemConfig()
    {
        Record("GetShmemConfig");
        if (ShmemConfig is { } set)
        {
            return set;
        }

        var config = new VhostUserShmemConfig { RegionCount = 2 };
        config.MemorySizes[0] = 0x10000;
        config.MemorySizes[7] = 0x200000;
        return config;
    }

    public void Dispose()
    {
        foreach (var fd in Fds)
        {
            fd.Dispose();
        }

        Channel?.Dispose();
        ReturnFd?.Dispose();
    }
}
