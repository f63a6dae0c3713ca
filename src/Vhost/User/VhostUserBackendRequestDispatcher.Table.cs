using Vhost.User.Messages;
using static Vhost.User.VhostUserFailureForm;
using static Vhost.User.VhostUserReplyKind;
using P = Vhost.User.Messages.VhostUserProtocolFeatures;
using V = Vhost.User.VhostUserVirtioGate;

namespace Vhost.User;

/// <content>The front-end request table: one row per request, read by the one dispatch path.</content>
internal sealed partial class VhostUserBackendRequestDispatcher
{
    /// <summary>The rows, indexed by request code (the spec's FrontendReq numbers); a code without a row is unknown.</summary>
    private static readonly VhostUserRequestRow<FrontendRequestHandler>[] Requests = BuildTable();

    /// <summary>A handler method: checks the payload's values, calls the <see cref="IVhostUserBackendRequestHandler"/>, and sends a reply of its own if the row says it has one.</summary>
    private delegate void FrontendRequestHandler(VhostUserBackendRequestDispatcher dispatcher, FrontendRequest request, VhostUserMessage message);

    /// <summary>The row of <paramref name="code"/>, or <see langword="false"/> for a code this back-end does not know (a newer front-end).</summary>
    private static bool TryGetRow(uint code, out VhostUserRequestRow<FrontendRequestHandler> row)
    {
        if (code < (uint)Requests.Length && Requests[code].IsKnown)
        {
            row = Requests[code];
            return true;
        }

        row = default;
        return false;
    }

    /// <summary>The protocol-feature gate of <paramref name="request"/>: the front-end checks it before sending, the dispatcher on receipt.</summary>
    internal static VhostUserProtocolFeatures GateOf(FrontendRequest request)
        => TryGetRow((uint)request, out VhostUserRequestRow<FrontendRequestHandler> row) ? row.Gate : VhostUserProtocolFeatures.None;

    private static VhostUserRequestRow<FrontendRequestHandler>[] BuildTable()
    {
        var t = new VhostUserRequestRow<FrontendRequestHandler>[(int)FrontendRequest.GetVringBaseSkipDrain + 1];
        const int Var = -1;
        const int MaxRegions = VhostUserLimits.MaxMemTableRegions;

        // Columns: payload size, fewest fds, most fds, protocol-feature gate, virtio gate, reply kind, failure form, handler method.
        t[(int)FrontendRequest.GetFeatures] = new(0, 0, 0, P.None, V.None, Own, None, static (d, r, m) => d.GetFeatures(r));
        t[(int)FrontendRequest.SetFeatures] = new(8, 0, 0, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetFeatures(m));
        t[(int)FrontendRequest.SetOwner] = new(0, 0, 0, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d._handler.SetOwner());
        t[(int)FrontendRequest.ResetOwner] = new(0, 0, 0, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d._handler.ResetOwner());
        t[(int)FrontendRequest.SetMemTable] = new(Var, 1, MaxRegions, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetMemTable(r, m));
        t[(int)FrontendRequest.SetLogBase] = new(16, 1, 1, P.LogShmFd, V.None, Own, None, static (d, r, m) => d.SetLogBase(r, m));
        t[(int)FrontendRequest.SetLogFd] = new(0, 1, 1, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetLogFd(r, m));
        t[(int)FrontendRequest.SetVringNum] = new(8, 0, 0, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringNum(r, m));
        t[(int)FrontendRequest.SetVringAddr] = new(40, 0, 0, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringAddress(r, m));
        t[(int)FrontendRequest.SetVringBase] = new(8, 0, 0, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringBase(r, m));
        t[(int)FrontendRequest.GetVringBase] = new(8, 0, 0, P.None, V.None, Own, None, static (d, r, m) => d.GetVringBase(r, m));
        t[(int)FrontendRequest.SetVringKick] = new(8, 0, 1, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringFile(r, m));
        t[(int)FrontendRequest.SetVringCall] = new(8, 0, 1, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringFile(r, m));
        t[(int)FrontendRequest.SetVringErr] = new(8, 0, 1, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringFile(r, m));
        t[(int)FrontendRequest.GetProtocolFeatures] = new(0, 0, 0, P.None, V.ProtocolFeaturesOffered, Own, None, static (d, r, m) => d.GetProtocolFeatures(r));
        t[(int)FrontendRequest.SetProtocolFeatures] = new(8, 0, 0, P.None, V.ProtocolFeaturesOffered, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetProtocolFeatures(m));
        t[(int)FrontendRequest.GetQueueNum] = new(0, 0, 0, P.MQ, V.None, Own, None, static (d, r, m) => d.SendU64(r, d._handler.GetQueueNum()));
        t[(int)FrontendRequest.SetVringEnable] = new(8, 0, 0, P.None, V.ProtocolFeaturesAcked, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringEnable(r, m));
        t[(int)FrontendRequest.SendRarp] = new(8, 0, 0, P.Rarp, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d._handler.SendRarp(m.Body[..6]));
        t[(int)FrontendRequest.NetSetMtu] = new(8, 0, 0, P.NetMtu, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d._handler.NetSetMtu(m.Read<VhostUserU64>().Value));
        t[(int)FrontendRequest.SetBackendReqFd] = new(0, 1, 1, P.BackendRequest, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetBackendRequestFd(m));
        t[(int)FrontendRequest.IotlbMsg] = new(32, 0, 0, P.None, V.AccessPlatform, Own, U64Failure, static (d, r, m) => d.IotlbMessage(r, m));
        t[(int)FrontendRequest.SetVringEndian] = new(8, 0, 0, P.CrossEndian, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetVringEndianness(r, m));
        t[(int)FrontendRequest.GetConfig] = new(Var, 0, 0, P.Config, V.None, Own, EmptyReply, static (d, r, m) => d.GetConfig(r, m));
        t[(int)FrontendRequest.SetConfig] = new(Var, 0, 0, P.Config, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetConfig(r, m));
        t[(int)FrontendRequest.CreateCryptoSession] = new(Var, 0, 0, P.CryptoSession, V.None, Own, None, static (d, r, m) => d.CreateCryptoSession(r, m));
        t[(int)FrontendRequest.CloseCryptoSession] = new(8, 0, 0, P.CryptoSession, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d._handler.CloseCryptoSession(m.Read<VhostUserU64>().Value));
        t[(int)FrontendRequest.PostcopyAdvise] = new(0, 0, 0, P.PageFault, V.None, Own, EmptyReply, static (d, r, m) => d.PostcopyAdvise(r));
        t[(int)FrontendRequest.PostcopyListen] = new(0, 0, 0, P.PageFault, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.PostcopyListen());
        t[(int)FrontendRequest.PostcopyEnd] = new(0, 0, 0, P.PageFault, V.None, Own, U64Failure, static (d, r, m) => d.PostcopyEnd(r));
        t[(int)FrontendRequest.GetInflightFd] = new(24, 0, 0, P.InflightShmFd, V.None, Own, NoInflightRegion, static (d, r, m) => d.GetInflightFd(r, m));
        t[(int)FrontendRequest.SetInflightFd] = new(24, 1, 1, P.InflightShmFd, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetInflightFd(r, m));
        t[(int)FrontendRequest.GpuSetSocket] = new(0, 1, 1, P.None, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d._handler.GpuSetSocket(m.Fds));
        t[(int)FrontendRequest.ResetDevice] = new(0, 0, 0, P.ResetDevice, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.ResetDevice());
        t[(int)FrontendRequest.VringKick] = new(8, 0, 0, P.InbandNotifications, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.VringKick(r, m));
        t[(int)FrontendRequest.GetMaxMemSlots] = new(0, 0, 0, P.ConfigureMemorySlots, V.None, Own, None, static (d, r, m) => d.SendU64(r, d._handler.GetMaxMemorySlots()));
        t[(int)FrontendRequest.AddMemReg] = new(40, 1, 1, P.ConfigureMemorySlots, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.AddMemoryRegion(r, m));

        // The spec lets back-ends accept (and close) an fd on REM_MEM_REG for older front-ends.
        t[(int)FrontendRequest.RemMemReg] = new(40, 0, 1, P.ConfigureMemorySlots, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.RemoveMemoryRegion(r, m));
        t[(int)FrontendRequest.SetStatus] = new(8, 0, 0, P.Status, V.None, AckWhenAsked, Acknowledgement, static (d, r, m) => d.SetStatus(r, m));
        t[(int)FrontendRequest.GetStatus] = new(0, 0, 0, P.Status, V.None, Own, None, static (d, r, m) => d.SendU64(r, d._handler.GetStatus()));
        t[(int)FrontendRequest.GetSharedObject] = new(16, 0, 0, P.SharedObject, V.None, Own, U64Failure, static (d, r, m) => d.GetSharedObject(r, m));
        t[(int)FrontendRequest.SetDeviceStateFd] = new(8, 1, 1, P.DeviceState, V.None, Own, DeviceStateError, static (d, r, m) => d.SetDeviceStateFd(r, m));
        t[(int)FrontendRequest.CheckDeviceState] = new(0, 0, 0, P.DeviceState, V.None, Own, U64Failure, static (d, r, m) => d.CheckDeviceState(r));
        t[(int)FrontendRequest.GetShmemConfig] = new(0, 0, 0, P.Shmem, V.None, Own, None, static (d, r, m) => d.GetShmemConfig(r));
        t[(int)FrontendRequest.GetVringBaseSkipDrain] = new(8, 0, 0, P.GetVringBaseSkipDrain, V.None, Own, None, static (d, r, m) => d.GetVringBase(r, m));
        return t;
    }
}
