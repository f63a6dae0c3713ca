using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;
using Vhost.Virtio;

namespace Vhost.User;

/// <content>
/// The handler methods, one per front-end request (or per family of requests that share a
/// payload): each checks the values its row cannot (the table has already checked size, fds and
/// gates), calls the <see cref="IVhostUserBackendRequestHandler"/>, and sends the reply of its own
/// where the row says there is one.
/// </content>
internal sealed partial class VhostUserBackendRequestDispatcher
{
    private void GetFeatures(FrontendRequest request) => SendU64(request, _handler.GetFeatures());

    private void SetFeatures(VhostUserMessage message)
    {
        ulong features = message.Read<VhostUserU64>().Value;
        ulong unknown = features & ~_handler.GetFeatures();
        if (unknown != 0)
        {
            throw Invalid(FrontendRequest.SetFeatures, $"acks {VhostUserFeatureNames.Virtio(unknown)}, which the device did not offer (it offers {VhostUserFeatureNames.Virtio(_handler.GetFeatures())})");
        }

        // Stored before the handler applies them: the handler reads the negotiation (and the bits
        // were offered, so they are what the front-end acked even if the device then fails them).
        _negotiation.AckFeatures(features);
        _handler.SetFeatures(features);
        VhostUserLogging.FeaturesAcked(_logger, features);
        LogNegotiation();
    }

    private void GetProtocolFeatures(FrontendRequest request)
        => SendU64(request, (ulong)(_handler.GetProtocolFeatures() | VhostUserProtocolFeatures.ReplyAck));

    private void SetProtocolFeatures(VhostUserMessage message)
    {
        var features = (VhostUserProtocolFeatures)message.Read<VhostUserU64>().Value;
        VhostUserProtocolFeatures offered = _handler.GetProtocolFeatures() | VhostUserProtocolFeatures.ReplyAck;
        if ((features & ~offered) != 0)
        {
            throw Invalid(FrontendRequest.SetProtocolFeatures, $"acks {VhostUserFeatureNames.Protocol(features & ~offered)}, which this back-end did not offer (it offers {VhostUserFeatureNames.Protocol(offered)})");
        }

        _negotiation.AckProtocolFeatures(features);
        _handler.SetProtocolFeatures(features);
        VhostUserLogging.ProtocolFeaturesAcked(_logger, features);
        LogNegotiation();
    }

    /// <summary>
    /// Logs the negotiated features by name, once per negotiation: when both are known (SET_FEATURES,
    /// and SET_PROTOCOL_FEATURES if VHOST_USER_F_PROTOCOL_FEATURES was acked, in either order) and
    /// differ from the last line; QEMU repeats SET_FEATURES (per vhost device, at each start).
    /// </summary>
    private void LogNegotiation()
    {
        (ulong Features, VhostUserProtocolFeatures Protocol) now = (_negotiation.Features, _negotiation.ProtocolFeatures);
        if (!_negotiation.FeaturesSet || (_negotiation.ProtocolFeaturesAcked && !_negotiation.ProtocolFeaturesSet)
            || _loggedNegotiation == now)
        {
            return;
        }

        _loggedNegotiation = now;
        VhostUserLogging.Negotiated(_logger, VhostUserFeatureNames.Virtio(now.Features), VhostUserFeatureNames.Protocol(now.Protocol));
    }

    private void SetMemTable(FrontendRequest request, VhostUserMessage message)
    {
        ReadOnlySpan<byte> body = message.Body;
        ReceivedFds fds = message.Fds;
        int headerSize = VhostUserLimits.MemoryHeaderSize;
        if (body.Length < headerSize)
        {
            throw Invalid(request, $"payload of {body.Length} bytes is shorter than the table header");
        }

        VhostUserMemoryHeader table = MemoryMarshal.Read<VhostUserMemoryHeader>(body);
        if (table.RegionCount is 0 or > VhostUserLimits.MaxMemTableRegions)
        {
            throw Invalid(request, $"{table.RegionCount} regions (1 to {VhostUserLimits.MaxMemTableRegions} allowed)");
        }

        ToleratedIfNonZero(request, table.Padding, "padding");

        int expected = headerSize + ((int)table.RegionCount * VhostUserLimits.MemoryRegionSize);
        if (body.Length != expected)
        {
            throw Invalid(request, $"payload is {body.Length} bytes, expected {expected} for {table.RegionCount} regions");
        }

        if (fds.Count != table.RegionCount)
        {
            throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, $"SetMemTable: {table.RegionCount} regions but {fds.Count} fds");
        }

        ReadOnlySpan<VhostUserMemoryRegion> regions = MemoryMarshal.Cast<byte, VhostUserMemoryRegion>(body[headerSize..]);
        foreach (VhostUserMemoryRegion region in regions)
        {
            if (!region.IsValid())
            {
                throw Invalid(request, $"region at 0x{region.GuestPhysicalAddress:x} is empty or wraps");
            }
        }

        _handler.SetMemoryTable(regions, fds);
        SendPostcopyRegions(request, body, headerSize);
    }

    private void SetLogBase(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserLog log = message.Read<VhostUserLog>();
        if (!log.IsValid())
        {
            throw Invalid(request, "invalid log size or offset");
        }

        _handler.SetLogBase(log, message.Fds);

        // Echo the log description: QEMU reads any reply, rust-vmm front-ends expect these 16 bytes.
        _endpoint.Reply((uint)request, in log);
    }

    private void SetLogFd(FrontendRequest request, VhostUserMessage message)
    {
        // The log fd is signalled when a log sync is done (QEMU's vhost_user_log_sync waits on it):
        // anything but an eventfd there would break the signalling later, so a handler only gets one.
        if (!Fd.IsEventFd(message.Fds.Peek(0)!))
        {
            throw Invalid(request, "the fd is not an eventfd");
        }

        _handler.SetLogFd(message.Fds);
    }

    private void SetVringNum(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = ReadVringState(request, message);
        if (state.Num is 0 or > VhostUserLimits.MaxQueueSize)
        {
            throw Invalid(request, $"queue size {state.Num} is outside 1..{VhostUserLimits.MaxQueueSize}");
        }

        _handler.SetVringNum((int)state.Index, state.Num);
    }

    private void SetVringAddress(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringAddress address = message.Read<VhostUserVringAddress>();
        if (!address.IsValid())
        {
            throw Invalid(request, "unknown flags, index out of range, or misaligned ring address");
        }

        _handler.SetVringAddress(address);
    }

    private void SetVringBase(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = ReadVringState(request, message);

        // Split rings carry only the 16-bit next available index; packed rings use all 32 bits.
        if (!_negotiation.HasFeatures((ulong)VirtioFeatures.RingPacked) && state.Num > ushort.MaxValue)
        {
            throw Invalid(request, $"base 0x{state.Num:x} does not fit the 16-bit index of a split ring");
        }

        _handler.SetVringBase((int)state.Index, state.Num);
    }

    private void GetVringBase(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = ReadVringState(request, message);
        ToleratedIfNonZero(request, state.Num, "num");
        uint value = request == FrontendRequest.GetVringBaseSkipDrain
            ? _handler.GetVringBaseSkipDrain((int)state.Index)
            : _handler.GetVringBase((int)state.Index);
        _endpoint.Reply((uint)request, new VhostUserVringState(state.Index, value));
    }

    /// <summary>SET_VRING_KICK, SET_VRING_CALL and SET_VRING_ERR: a ring index, the no-fd flag, and an eventfd.</summary>
    private void SetVringFile(FrontendRequest request, VhostUserMessage message)
    {
        ReceivedFds fds = message.Fds;
        ulong word = message.Read<VhostUserU64>().Value;
        ToleratedIfNonZero(request, word & ~(VhostUserLimits.VringIndexMask | VhostUserLimits.VringNoFdFlag), "reserved bits");

        bool noFd = (word & VhostUserLimits.VringNoFdFlag) != 0;
        if (noFd != (fds.Count == 0))
        {
            throw new VhostUserProtocolException(VhostUserViolation.IncorrectFds, noFd ? $"{request}: the no-fd flag is set but an fd is attached" : $"{request}: no fd attached and the no-fd flag is clear");
        }

        // The one check of a vring kick/call/err fd: a pipe, file or socket there would
        // break epoll or the signalling later, so a handler only ever gets an eventfd.
        SafeFileHandle? fd = fds.Peek(0);
        if (fd is not null && !Fd.IsEventFd(fd))
        {
            throw Invalid(request, "the fd is not an eventfd");
        }

        int index = (int)(word & VhostUserLimits.VringIndexMask);
        switch (request)
        {
            case FrontendRequest.SetVringKick:
                _handler.SetVringKick(index, fds);
                break;
            case FrontendRequest.SetVringCall:
                _handler.SetVringCall(index, fds);
                break;
            default:
                _handler.SetVringError(index, fds);
                break;
        }
    }

    private void SetVringEnable(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = ReadVringState(request, message);
        if (state.Num > 1)
        {
            throw Invalid(request, $"enable value {state.Num} is neither 0 nor 1");
        }

        _handler.SetVringEnable((int)state.Index, state.Num == 1);
    }

    private void ResetDevice()
    {
        _negotiation.ResetDevice();
        _handler.ResetDevice();
    }

    private void SetBackendRequestFd(VhostUserMessage message)
    {
        var channel = new VhostUserBackendChannel(new VhostUserConnection(message.Fds.Take(0)), _negotiation, _logger);
        try
        {
            _handler.SetBackendRequestFd(channel);
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    private void IotlbMessage(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserIotlbMessage iotlb = message.Read<VhostUserIotlbMessage>();
        if (!iotlb.IsValid())
        {
            throw Invalid(request, "unknown type or permission, or an invalid range");
        }

        _handler.IotlbMessage(iotlb);
        SendU64(request, 0);
    }

    private void SetVringEndianness(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = ReadVringState(request, message);
        var endianness = (VringEndianness)state.Num;
        if (!Enum.IsDefined(endianness))
        {
            throw Invalid(request, $"unknown endianness {state.Num}");
        }

        _handler.SetVringEndianness((int)state.Index, endianness);
    }

    private void GetConfig(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserConfigHeader config = ReadConfig(request, message.Body);
        Span<byte> reply = stackalloc byte[VhostUserLimits.ConfigHeaderSize + VhostUserLimits.MaxConfigSize];
        reply = reply[..(VhostUserLimits.ConfigHeaderSize + (int)config.Size)];
        reply.Clear();
        MemoryMarshal.Write(reply, in config);
        _handler.GetConfig(config.Offset, config.Flags, reply[VhostUserLimits.ConfigHeaderSize..]);
        _endpoint.Reply((uint)request, reply);
    }

    private void SetConfig(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserConfigHeader config = ReadConfig(request, message.Body);
        _handler.SetConfig(config.Offset, config.Flags, message.Body.Slice(VhostUserLimits.ConfigHeaderSize, (int)config.Size));
    }

    private void CreateCryptoSession(FrontendRequest request, VhostUserMessage message)
    {
        if (message.Body.IsEmpty)
        {
            throw Invalid(request, "empty session description");
        }

        byte[] reply = _handler.CreateCryptoSession(message.Body);
        _endpoint.Reply((uint)request, reply);
    }

    private void PostcopyAdvise(FrontendRequest request)
    {
        using SafeFileHandle fd = _handler.PostcopyAdvise() ?? throw new InvalidOperationException("PostcopyAdvise returned no fd");

        // The reply is the userfaultfd alone: QEMU rejects a reply with a payload.
        _endpoint.Reply((uint)request, ReadOnlySpan<byte>.Empty, [fd]);
        _postcopy.Advise();
    }

    private void PostcopyListen()
    {
        _handler.PostcopyListen();
        _postcopy.Listen();
    }

    private void PostcopyEnd(FrontendRequest request)
    {
        _postcopy.End();
        _handler.PostcopyEnd();
        SendU64(request, 0);
    }

    private void GetInflightFd(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserInflight inflight = message.Read<VhostUserInflight>();
        if (!inflight.IsValid())
        {
            throw Invalid(request, "zero queues or a zero or oversized queue size");
        }

        using SafeFileHandle? fd = _handler.GetInflightFd(inflight, out VhostUserInflight reply);
        if (reply.MmapSize == 0)
        {
            // No inflight region (QEMU carries on without one): no fd goes with it.
            _endpoint.Reply((uint)request, in reply);
            return;
        }

        if (fd is null)
        {
            throw new InvalidOperationException("GetInflightFd returned a region but no fd");
        }

        _endpoint.Reply((uint)request, in reply, [fd]);
    }

    private void SetInflightFd(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserInflight inflight = message.Read<VhostUserInflight>();
        if (!inflight.IsValid() || inflight.MmapSize == 0)
        {
            throw Invalid(request, "zero queues, zero queue size or an empty region");
        }

        _handler.SetInflightFd(inflight, message.Fds);
    }

    private void VringKick(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = ReadVringState(request, message);
        ToleratedIfNonZero(request, state.Num, "num");
        _handler.VringKick((int)state.Index);
    }

    private void AddMemoryRegion(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserSingleMemoryRegion region = ReadSingleRegion(request, message);
        _handler.AddMemoryRegion(region.Region, message.Fds);
        SendPostcopyRegions(request, message.Body, sizeof(ulong));
    }

    private void RemoveMemoryRegion(FrontendRequest request, VhostUserMessage message)
        => _handler.RemoveMemoryRegion(ReadSingleRegion(request, message).Region);

    private void SetStatus(FrontendRequest request, VhostUserMessage message)
    {
        ulong status = message.Read<VhostUserU64>().Value;
        if (status > byte.MaxValue)
        {
            throw Invalid(request, $"status 0x{status:x} does not fit the status byte");
        }

        _handler.SetStatus((byte)status);
    }

    private void GetSharedObject(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserSharedObject shared = message.Read<VhostUserSharedObject>();
        if (!shared.IsValid())
        {
            throw Invalid(request, "nil or max UUID");
        }

        using SafeFileHandle? fd = _handler.GetSharedObject(shared.Uuid.ToGuid());
        if (fd is null)
        {
            SendU64(request, 1);
        }
        else
        {
            SendU64(request, 0, fd);
        }
    }

    private void SetDeviceStateFd(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserDeviceStateTransfer transfer = message.Read<VhostUserDeviceStateTransfer>();
        if (!transfer.IsValid())
        {
            throw Invalid(request, $"unknown direction {(uint)transfer.Direction} or phase {(uint)transfer.Phase}");
        }

        using SafeFileHandle? fd = _handler.SetDeviceStateFd(transfer.Direction, transfer.Phase, message.Fds);
        if (fd is null)
        {
            SendU64(request, VhostUserLimits.DeviceStateNoFdFlag);
        }
        else
        {
            SendU64(request, 0, fd);
        }
    }

    private void CheckDeviceState(FrontendRequest request)
    {
        _handler.CheckDeviceState();
        SendU64(request, 0);
    }

    private void GetShmemConfig(FrontendRequest request)
    {
        VhostUserShmemConfig config = _handler.GetShmemConfig();
        if (!config.IsValid() || !config.HasPageSizedRegions(Environment.SystemPageSize))
        {
            throw new InvalidOperationException("the handler returned a shared memory configuration whose region count does not match its sizes, or a size that is not a multiple of the page size");
        }

        _endpoint.Reply((uint)request, in config);
    }

    /// <summary>Postcopy: answers SET_MEM_TABLE / ADD_MEM_REG with the regions carrying the handler's mapping addresses.</summary>
    /// <returns>Whether the region list was sent.</returns>
    private bool SendPostcopyRegions(FrontendRequest request, ReadOnlySpan<byte> body, int prefix)
    {
        if (!_postcopy.Listening)
        {
            return false;
        }

        Span<byte> reply = stackalloc byte[VhostUserLimits.MemoryHeaderSize + (VhostUserLimits.MaxMemTableRegions * VhostUserLimits.MemoryRegionSize)];
        reply = reply[..body.Length];
        body.CopyTo(reply);
        Span<VhostUserMemoryRegion> regions = MemoryMarshal.Cast<byte, VhostUserMemoryRegion>(reply[prefix..]);
        int provided = 0;
        for (int i = 0; i < regions.Length; i++)
        {
            if (_handler.TryGetPostcopyMappingAddress(regions[i], out ulong address))
            {
                regions[i].UserAddress = address;
                provided++;
            }
        }

        if (provided == 0)
        {
            return false;
        }

        if (provided != regions.Length)
        {
            throw new InvalidOperationException($"{request}: the handler gave postcopy mapping addresses for {provided} of {regions.Length} regions");
        }

        _endpoint.Reply((uint)request, reply);
        _replySent = true;
        _postcopy.RegionsSent();
        VhostUserLogging.PostcopyRegionsSent(_logger, request, regions.Length);
        return true;
    }

    /// <summary>An unused field that should be zero and is not: no meaning is read into it; logged.</summary>
    private void ToleratedIfNonZero(FrontendRequest request, ulong value, string field)
    {
        if (value != 0)
        {
            VhostUserLogging.Tolerated(_logger, request, $"{field} 0x{value:x} in a field the spec reserves (should be 0)");
        }
    }

    /// <summary>Reads a ring state and checks its index (below 32768, so handlers get it as an <see cref="int"/>).</summary>
    private static VhostUserVringState ReadVringState(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserVringState state = message.Read<VhostUserVringState>();
        if (!state.IsValid())
        {
            throw Invalid(request, $"ring index {state.Index} is out of range");
        }

        return state;
    }

    private static VhostUserSingleMemoryRegion ReadSingleRegion(FrontendRequest request, VhostUserMessage message)
    {
        VhostUserSingleMemoryRegion region = message.Read<VhostUserSingleMemoryRegion>();
        if (!region.IsValid())
        {
            throw Invalid(request, "zero-sized or wrapping region");
        }

        return region;
    }

    private static VhostUserConfigHeader ReadConfig(FrontendRequest request, ReadOnlySpan<byte> body)
    {
        if (body.Length < VhostUserLimits.ConfigHeaderSize)
        {
            throw Invalid(request, $"payload of {body.Length} bytes is shorter than the config header");
        }

        VhostUserConfigHeader config = MemoryMarshal.Read<VhostUserConfigHeader>(body);
        if (!config.IsValid())
        {
            throw Invalid(request, $"config offset {config.Offset} size {config.Size} flags 0x{(uint)config.Flags:x} is invalid");
        }

        if (body.Length != VhostUserLimits.ConfigHeaderSize + config.Size)
        {
            throw Invalid(request, $"payload is {body.Length} bytes, expected {VhostUserLimits.ConfigHeaderSize + config.Size}");
        }

        return config;
    }
}
