using Microsoft.Win32.SafeHandles;
using Vhost.User;
using Vhost.User.Messages;
using VhostUserBackend.Virtio;

namespace Vhost.Fuzz;

/// <summary>
/// A back-end request handler that accepts every well-formed request, records its name and keeps
/// nothing: the `message` target uses it so the fuzzer reaches every dispatcher path (parsing,
/// validation, gating, fd accounting, replies) without a device's own refusals in the way.
/// An optional <see cref="IConfigDevice"/> serves GET/SET_CONFIG (the `config` target).
/// </summary>
internal sealed class PermissiveHandler : IVhostUserBackendRequestHandler, IDisposable
{
    private const ulong OfferedFeatures = ~0UL;
    private readonly IConfigDevice? _config;
    private VhostUserBackendChannel? _channel;

    public PermissiveHandler(IConfigDevice? config = null) => _config = config;

    /// <summary>How many requests reached the handler.</summary>
    public int Calls { get; private set; }

    /// <summary>The last request that reached the handler.</summary>
    public string? Last { get; private set; }

    private void Record(string name)
    {
        Calls++;
        Last = name;
    }

    public ulong GetFeatures() { Record(nameof(GetFeatures)); return OfferedFeatures; }
    public void SetFeatures(ulong features) => Record(nameof(SetFeatures));
    public void SetOwner() => Record(nameof(SetOwner));
    public void ResetOwner() => Record(nameof(ResetOwner));
    public VhostUserProtocolFeatures GetProtocolFeatures() { Record(nameof(GetProtocolFeatures)); return VhostUserProtocolFeatures.AllKnown; }
    public void SetProtocolFeatures(VhostUserProtocolFeatures features) => Record(nameof(SetProtocolFeatures));

    public void SetMemoryTable(ReadOnlySpan<VhostUserMemoryRegion> regions, ReceivedFds fds)
    {
        Record(nameof(SetMemoryTable));
        for (int i = 0; i < regions.Length; i++)
        {
            // Every region's fd must be there, one per region (the dispatcher checked the count).
            fds.Take(i).Dispose();
        }
    }

    public void SetLogBase(in VhostUserLog log, ReceivedFds fds) => Record(nameof(SetLogBase));
    public void SetLogFd(ReceivedFds fds) => Record(nameof(SetLogFd));
    public void SetVringNum(int index, uint num) => Record(nameof(SetVringNum));
    public void SetVringAddress(in VhostUserVringAddress address) => Record(nameof(SetVringAddress));
    public void SetVringBase(int index, uint baseValue) => Record(nameof(SetVringBase));
    public uint GetVringBase(int index) { Record(nameof(GetVringBase)); return (uint)index; }
    public void SetVringKick(int index, ReceivedFds fds) { Record(nameof(SetVringKick)); fds.TryTake(0)?.Dispose(); }
    public void SetVringCall(int index, ReceivedFds fds) { Record(nameof(SetVringCall)); fds.TryTake(0)?.Dispose(); }
    public void SetVringError(int index, ReceivedFds fds) { Record(nameof(SetVringError)); fds.TryTake(0)?.Dispose(); }
    public ulong GetQueueNum() { Record(nameof(GetQueueNum)); return 8; }
    public void SetVringEnable(int index, bool enable) => Record(nameof(SetVringEnable));
    public void SendRarp(ReadOnlySpan<byte> macAddress) => Record(nameof(SendRarp));
    public void NetSetMtu(ulong mtu) => Record(nameof(NetSetMtu));

    public void SetBackendRequestFd(VhostUserBackendChannel channel)
    {
        Record(nameof(SetBackendRequestFd));
        _channel?.Dispose();
        _channel = channel;
    }

    public void IotlbMessage(in VhostUserIotlbMessage message) => Record(nameof(IotlbMessage));
    public void SetVringEndianness(int index, VringEndianness endianness) => Record(nameof(SetVringEndianness));

    public void GetConfig(uint offset, VhostUserConfigFlags flags, Span<byte> data)
    {
        Record(nameof(GetConfig));
        if (_config is null)
        {
            data.Fill(0xa5);
            return;
        }

        _config.GetConfig(offset, data);
    }

    public void SetConfig(uint offset, VhostUserConfigFlags flags, ReadOnlySpan<byte> data)
    {
        Record(nameof(SetConfig));
        _config?.SetConfig(offset, data);
    }

    public byte[] CreateCryptoSession(ReadOnlySpan<byte> session) { Record(nameof(CreateCryptoSession)); return session.ToArray(); }
    public void CloseCryptoSession(ulong sessionId) => Record(nameof(CloseCryptoSession));
    public SafeFileHandle PostcopyAdvise() { Record(nameof(PostcopyAdvise)); return Fd.CreateMemFd("fuzz-postcopy", 0); }
    public void PostcopyListen() => Record(nameof(PostcopyListen));
    public void PostcopyEnd() => Record(nameof(PostcopyEnd));

    public SafeFileHandle GetInflightFd(in VhostUserInflight request, out VhostUserInflight reply)
    {
        Record(nameof(GetInflightFd));

        // A small region whatever was asked: the reply describes what is sent, not the request.
        const ushort queueSize = 16;
        ulong size = InflightRegion.RegionSize(1, queueSize);
        reply = new VhostUserInflight { MmapSize = size, MmapOffset = 0, QueueCount = 1, QueueSize = queueSize };
        return Fd.CreateMemFd("fuzz-inflight", (long)size);
    }

    public void SetInflightFd(in VhostUserInflight inflight, ReceivedFds fds) { Record(nameof(SetInflightFd)); fds.Take(0).Dispose(); }
    public void GpuSetSocket(ReceivedFds fds) => Record(nameof(GpuSetSocket));
    public void ResetDevice() => Record(nameof(ResetDevice));
    public void VringKick(int index) => Record(nameof(VringKick));
    public ulong GetMaxMemorySlots() { Record(nameof(GetMaxMemorySlots)); return VhostUserLimits.MaxMemorySlots; }
    public void AddMemoryRegion(in VhostUserMemoryRegion region, ReceivedFds fds) { Record(nameof(AddMemoryRegion)); fds.Take(0).Dispose(); }
    public void RemoveMemoryRegion(in VhostUserMemoryRegion region) => Record(nameof(RemoveMemoryRegion));
    public void SetStatus(byte status) => Record(nameof(SetStatus));
    public byte GetStatus() { Record(nameof(GetStatus)); return 0x0f; }
    public SafeFileHandle? GetSharedObject(Guid uuid) { Record(nameof(GetSharedObject)); return null; }
    public SafeFileHandle? SetDeviceStateFd(VhostUserTransferDirection direction, VhostUserTransferPhase phase, ReceivedFds fds) { Record(nameof(SetDeviceStateFd)); return null; }
    public void CheckDeviceState() => Record(nameof(CheckDeviceState));
    public VhostUserShmemConfig GetShmemConfig() { Record(nameof(GetShmemConfig)); return default; }

    public void Dispose() => _channel?.Dispose();
}
