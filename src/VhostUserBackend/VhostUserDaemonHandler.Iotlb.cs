using Vhost;
using Vhost.User;
using Vhost.User.Messages;
using Vhost.Virtio;
using VhostUserBackend.Iommu;

namespace VhostUserBackend;

/// <summary>
/// VIRTIO_F_ACCESS_PLATFORM in the daemon: the feature is offered whenever the device offers the
/// back-end channel (REPLY_ACK the dispatcher always offers; QEMU needs both for a vIOMMU), the
/// IOTLB_MSG updates and invalidations go into the connection's <see cref="Iotlb"/>, and rings that
/// wait for a translation of their areas start when an update brings it.
/// </summary>
internal sealed partial class VhostUserDaemonHandler
{
    /// <summary>ACCESS_PLATFORM when the device offers BACKEND_REQ (misses go there), else nothing.</summary>
    private ulong AccessPlatformOffer
        => (GetProtocolFeatures() & VhostUserProtocolFeatures.BackendRequest) != 0 ? (ulong)VirtioFeatures.AccessPlatform : 0;

    /// <summary>The connection's IOTLB (tests).</summary>
    internal Iotlb Iotlb => _iotlb;

    /// <summary>
    /// IOTLB_MSG from the front-end (the dispatcher checked ACCESS_PLATFORM is acked and the range
    /// does not wrap). An update wakes the workers waiting for a miss and completes the start of
    /// rings that waited for their areas; an invalidation takes effect for every later walk.
    /// </summary>
    public void IotlbMessage(in VhostUserIotlbMessage message)
    {
        switch (message.Type)
        {
            case VhostIotlbType.Update:
                if (message.Permission == VhostIotlbAccess.None)
                {
                    throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"IOTLB_MSG: an update of [0x{message.Iova:x}, +0x{message.Size:x}) without any permission (invalidate it instead)");
                }

                _iotlb.Update(message.Iova, message.Size, message.UserAddress, message.Permission);
                Log.IotlbMessage(_logger, message.Type, message.Iova, message.Size, message.UserAddress, message.Permission, _iotlb.Count);
                StartRingsWaitingForIotlb();
                break;
            case VhostIotlbType.Invalidate:
                _iotlb.Invalidate(message.Iova, message.Size);
                Log.IotlbMessage(_logger, message.Type, message.Iova, message.Size, 0, message.Permission, _iotlb.Count);
                break;
            case VhostIotlbType.BatchBegin:
            case VhostIotlbType.BatchEnd:
                // Every message takes effect on its own; a batch needs no bracket here.
                break;
            default:
                throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, $"IOTLB_MSG: type {message.Type} goes from the back-end to the front-end, not the other way");
        }
    }

    /// <summary>SET_FEATURES (workers paused): the rings translate through the IOTLB when ACCESS_PLATFORM is acked; otherwise it is emptied.</summary>
    private void ApplyAccessPlatform(ulong features)
    {
        bool on = (features & (ulong)VirtioFeatures.AccessPlatform) != 0;
        if (!on)
        {
            _iotlb.Clear();
        }
        else if (_vrings.Length > 0 && _vrings[0].Iotlb is null)
        {
            Log.AccessPlatformAcked(_logger);
        }

        foreach (Vring v in _vrings)
        {
            v.Iotlb = on ? _iotlb : null;
        }
    }

    /// <summary>The miss sender of the IOTLB: an IOTLB_MSG MISS on the back-end channel (any thread).</summary>
    private void SendIotlbMiss(ulong iova, VhostIotlbAccess permission)
    {
        VhostUserBackendChannel channel = Volatile.Read(ref _channel)
            ?? throw new InvalidOperationException("the front-end gave no back-end channel (SET_BACKEND_REQ_FD)");
        channel.SendIotlbMiss(iova, permission);
    }

    /// <summary>After an update: the rings whose start waits for IOTLB translations of their areas try again (their workers paused).</summary>
    private void StartRingsWaitingForIotlb()
    {
        List<Vring>? waiting = null;
        foreach (Vring v in _vrings)
        {
            if (v.IsStartPending)
            {
                (waiting ??= []).Add(v);
            }
        }

        if (waiting is null)
        {
            return;
        }

        Memory.GuestMemory memory = _memory.Acquire();
        try
        {
            foreach (Vring v in waiting)
            {
                Vring.RebindResult result;
                VhostException? failed;
                using (_workerOfQueue[v.Index].Pause(_whilePausing))
                {
                    result = v.Rebind(memory, out failed);
                }

                if (result == Vring.RebindResult.Regained)
                {
                    Log.RingStartedAfterIotlb(_logger, v.Index, v.Queue.GetVringBase());
                    _backend.OnVringStateChanged(v);
                }
                else if (failed is not null)
                {
                    Log.RingIotlbStartFailed(_logger, v.Index, failed);
                }
            }
        }
        finally
        {
            memory.Release();
        }
    }
}
