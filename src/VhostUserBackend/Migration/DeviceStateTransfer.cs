using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;

namespace VhostUserBackend.Migration;

/// <summary>
/// One connection's device-state transfers (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE). Save: the
/// device writes its state into memory at SET_DEVICE_STATE_FD (rings stopped, a consistent
/// snapshot), and a transfer thread writes it into the front-end's pipe. Load: the transfer thread
/// reads the pipe to end of file, at most <see cref="IVhostUserDeviceState.MaxStateSize"/> bytes,
/// and the device parses it at CHECK_DEVICE_STATE. The pipe is only touched by the transfer thread,
/// with non-blocking I/O against the timeout, so a front-end that never reads, never writes or
/// never closes its end holds no thread of the daemon past it.
/// </summary>
internal sealed class DeviceStateTransfer : IDisposable
{
    /// <summary>How long CHECK_DEVICE_STATE waits for the transfer thread to notice the front-end's end of file.</summary>
    private static readonly TimeSpan CheckGrace = TimeSpan.FromSeconds(1);

    private readonly IVhostUserDeviceState _device;
    private readonly TimeSpan _timeout;
    private CancellationTokenSource? _cancel;
    private Thread? _thread;
    private VhostUserTransferDirection _direction;
    private byte[]? _loaded;
    private Exception? _failure;

    public DeviceStateTransfer(IVhostUserDeviceState device, TimeSpan timeout)
    {
        _device = device;
        _timeout = timeout;
    }

    /// <summary>SET_DEVICE_STATE_FD: starts a transfer over <paramref name="fd"/> (taken over: closed when the transfer ends or is refused), cancelling one still under way.</summary>
    /// <exception cref="NotSupportedException">A phase other than stopped.</exception>
    /// <exception cref="InvalidOperationException">The fd is not a pipe, or the device failed to save.</exception>
    public void Start(VhostUserTransferDirection direction, VhostUserTransferPhase phase, SafeFileHandle fd)
    {
        try
        {
            if (phase != VhostUserTransferPhase.Stopped)
            {
                throw new NotSupportedException($"device state transfer phase {phase}: the spec defines only the stopped phase");
            }

            if (direction is not (VhostUserTransferDirection.Save or VhostUserTransferDirection.Load))
            {
                throw new NotSupportedException($"device state transfer direction {direction}");
            }

            // A front-end that gave up on a transfer (QEMU skips CHECK_DEVICE_STATE when its side
            // failed) starts over: the old transfer is cancelled (its thread wakes within a poll slice).
            Stop();

            if (!BoundedPipe.IsPipe(fd))
            {
                throw new InvalidOperationException("the device state fd is not a pipe");
            }

            byte[]? saved = null;
            if (direction == VhostUserTransferDirection.Save)
            {
                using var state = new MemoryStream();
                try
                {
                    _device.SaveState(state);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    throw new InvalidOperationException($"the device failed to save its state: {e.Message}", e);
                }

                saved = state.ToArray();
            }

            _direction = direction;
            _loaded = null;
            _failure = null;
            _cancel = new CancellationTokenSource();
            CancellationToken cancellation = _cancel.Token;
            _thread = new Thread(() => Run(fd, saved, cancellation)) { IsBackground = true, Name = "vhost-user device state" };
            _thread.Start();
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>CHECK_DEVICE_STATE: ends the transfer; on a load, the device parses the state.</summary>
    /// <exception cref="InvalidOperationException">No transfer, it failed, or the device rejected the loaded state (the message says why).</exception>
    public void Check()
    {
        Thread thread = _thread ?? throw new InvalidOperationException("CHECK_DEVICE_STATE without a device state transfer");
        if (!thread.Join(CheckGrace))
        {
            Stop();
            throw new InvalidOperationException($"device state {_direction}: the front-end checked before its end of the pipe was done (no end of file)");
        }

        _thread = null;
        _cancel?.Dispose();
        _cancel = null;
        if (_failure is { } failure)
        {
            throw new InvalidOperationException($"device state {_direction} failed: {failure.Message}", failure);
        }

        if (_loaded is { } loaded)
        {
            _loaded = null;
            try
            {
                _device.LoadState(new MemoryStream(loaded, writable: false));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new InvalidOperationException($"the device rejected the loaded state ({loaded.Length} bytes): {e.Message}", e);
            }
        }
    }

    public void Dispose() => Stop();

    private void Stop()
    {
        _cancel?.Cancel();
        _thread?.Join();
        _thread = null;
        _cancel?.Dispose();
        _cancel = null;
        _loaded = null;
    }

    private void Run(SafeFileHandle fd, byte[]? saved, CancellationToken cancellation)
    {
        try
        {
            using (fd)
            {
                if (saved is not null)
                {
                    BoundedPipe.WriteAll(fd, saved, _timeout, cancellation);
                }
                else
                {
                    _loaded = BoundedPipe.ReadToEnd(fd, _device.MaxStateSize, _timeout, cancellation);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or TimeoutException or OperationCanceledException or Vhost.VhostException)
        {
            _failure = e;
        }
    }
}
