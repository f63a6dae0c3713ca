namespace Vhost.User.Messages;

/// <summary>The direction of a device-state transfer (SET_DEVICE_STATE_FD).</summary>
public enum VhostUserTransferDirection : uint
{
    /// <summary><c>VHOST_TRANSFER_STATE_DIRECTION_SAVE</c>: the back-end writes its state into the fd.</summary>
    Save = 0,
    /// <summary><c>VHOST_TRANSFER_STATE_DIRECTION_LOAD</c>: the back-end reads its state from the fd.</summary>
    Load = 1,
}
