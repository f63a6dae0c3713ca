using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>Device state migration as QEMU does it (vhost_save_backend_state, vhost_load_backend_state).</summary>
public sealed partial class VhostUserFrontend
{
    /// <summary>
    /// Saves the back-end's device state (DEVICE_STATE): SET_DEVICE_STATE_FD with the write end of a
    /// new pipe, the state read to end of file, then CHECK_DEVICE_STATE. Stop every ring first
    /// (GET_VRING_BASE), as the spec's "stopped" phase requires.
    /// </summary>
    /// <param name="maxBytes">The most the state may hold; a back-end that sends more fails the save.</param>
    /// <param name="timeout">How long the back-end may take to send it all and close its end.</param>
    /// <returns>The state.</returns>
    /// <exception cref="InvalidDataException">The back-end sent more than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="TimeoutException">The back-end did not close its end in time.</exception>
    /// <exception cref="VhostUserException">The back-end refused or failed the transfer.</exception>
    public byte[] SaveDeviceState(int maxBytes, TimeSpan timeout)
    {
        (SafeFileHandle read, SafeFileHandle write) = BoundedPipe.Create();
        using (read)
        {
            SafeFileHandle? instead;
            using (write)
            {
                instead = SetDeviceStateFd(VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped, write);
            }

            using (instead)
            {
                byte[] state = BoundedPipe.ReadToEnd(instead ?? read, maxBytes, timeout);
                CheckDeviceState();
                return state;
            }
        }
    }

    /// <summary>
    /// Loads a device state into the back-end (DEVICE_STATE): SET_DEVICE_STATE_FD with the read end
    /// of a new pipe, <paramref name="state"/> written and the pipe closed, then CHECK_DEVICE_STATE,
    /// which fails when the back-end rejected the state. The rings must be stopped (not started yet).
    /// </summary>
    /// <param name="state">The state a <see cref="SaveDeviceState"/> returned.</param>
    /// <param name="timeout">How long the back-end may take to read it.</param>
    /// <exception cref="TimeoutException">The back-end did not read it in time.</exception>
    /// <exception cref="VhostUserException">The back-end refused the transfer or rejected the state.</exception>
    public void LoadDeviceState(ReadOnlySpan<byte> state, TimeSpan timeout)
    {
        (SafeFileHandle read, SafeFileHandle write) = BoundedPipe.Create();
        using (write)
        {
            SafeFileHandle? instead;
            using (read)
            {
                instead = SetDeviceStateFd(VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, read);
            }

            using (instead)
            {
                BoundedPipe.WriteAll(instead ?? write, state, timeout);
            }
        }

        CheckDeviceState();
    }
}
