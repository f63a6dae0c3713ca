namespace Vhost.User.Messages;

/// <summary>The migration phase of a device-state transfer (SET_DEVICE_STATE_FD).</summary>
public enum VhostUserTransferPhase : uint
{
    /// <summary><c>VHOST_TRANSFER_STATE_PHASE_STOPPED</c>: the device is stopped (the only phase defined).</summary>
    Stopped = 0,
}
