using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The SET_DEVICE_STATE_FD payload (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserDeviceStateTransfer
{
    /// <summary>Save or load.</summary>
    public VhostUserTransferDirection Direction;

    /// <summary>The migration phase.</summary>
    public VhostUserTransferPhase Phase;

    /// <summary>Creates the payload.</summary>
    /// <param name="direction">Save or load.</param>
    /// <param name="phase">The phase.</param>
    public VhostUserDeviceStateTransfer(VhostUserTransferDirection direction, VhostUserTransferPhase phase)
    {
        Direction = direction;
        Phase = phase;
    }

    /// <summary>Syntax check: known direction and phase.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => Enum.IsDefined(Direction) && Enum.IsDefined(Phase);
}
