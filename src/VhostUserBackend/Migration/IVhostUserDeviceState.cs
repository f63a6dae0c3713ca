namespace VhostUserBackend.Migration;

/// <summary>
/// A device's migratable state (vhost-user DEVICE_STATE: SET_DEVICE_STATE_FD and
/// CHECK_DEVICE_STATE). Return it from <see cref="IVhostUserBackend.DeviceState"/> and the daemon
/// offers <see cref="Vhost.User.Messages.VhostUserProtocolFeatures.DeviceState"/> by itself, owns
/// the front-end's pipe, moves the bytes on a thread of its own against
/// <see cref="VhostUserDaemonOptions.DeviceStateTimeout"/>, and reports the result at
/// CHECK_DEVICE_STATE. The device only turns its state into bytes and back, on the control thread,
/// with every ring stopped (the spec's "stopped" transfer phase: the front-end stopped the rings
/// with GET_VRING_BASE first).
/// </summary>
/// <remarks>
/// The loaded state comes from the wire, written by another process that may be another version of
/// this device or not this device at all. Start it with a magic and a version number, reject what
/// you do not know with <see cref="InvalidDataException"/> and a clear message, check every count
/// and length against the bytes left and your own limits, and parse everything before you change
/// anything, so a rejected state leaves the device as it was.
/// </remarks>
public interface IVhostUserDeviceState
{
    /// <summary>The most bytes a state of this device may hold: a longer load is refused before <see cref="LoadState"/> is called.</summary>
    int MaxStateSize { get; }

    /// <summary>Writes the device's state (source side of a migration, SET_DEVICE_STATE_FD with direction save).</summary>
    /// <param name="destination">An in-memory stream; the daemon sends its content to the front-end.</param>
    void SaveState(Stream destination);

    /// <summary>
    /// Restores the device's state (destination side, at CHECK_DEVICE_STATE once the front-end sent
    /// all of it). Throw <see cref="InvalidDataException"/> for a state that is malformed or not
    /// this device's; the front-end then gets the failure.
    /// </summary>
    /// <param name="source">A read-only in-memory stream of at most <see cref="MaxStateSize"/> bytes.</param>
    void LoadState(Stream source);
}
