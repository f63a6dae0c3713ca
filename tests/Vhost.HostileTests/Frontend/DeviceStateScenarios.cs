using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vhost.HostileTests.Targets;
using Vhost.User.Messages;

namespace Vhost.HostileTests.Frontend;

/// <summary>
/// Device state transfer (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE) abused: a pipe the front-end
/// never closes or never reads, garbage, truncated and endless state, unknown phases and
/// directions, fds that are not pipes, checks out of turn. A daemon whose device has no state
/// refuses them all; one with state must fail the transfer, never hang on the pipe.
/// </summary>
public static class DeviceStateScenarios
{
    /// <summary>The category name.</summary>
    public const string Category = "device state";

    /// <summary>Every scenario of this class.</summary>
    /// <returns>The scenarios.</returns>
    public static IEnumerable<HostileScenario> All()
    {
        const string C = Category;
        yield return new(C, "load: the front-end never closes its end, then checks", t => Kit.WithNegotiated(t, s =>
        {
            (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
            using (w)
            {
                using (r)
                {
                    Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r);
                }

                Fd.Write(w, "ECHO"u8);
                Check(s);
            }
        }));
        yield return new(C, "save: the front-end never reads and never checks, then leaves", t => Kit.WithNegotiated(t, s =>
        {
            (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
            using (r)
            {
                using (w)
                {
                    Transfer(s, VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped, w);
                }

                Thread.Sleep(200);
            }
        }));
        yield return new(C, "load: garbage", t => Kit.WithNegotiated(t, s => Load(s, [.. Enumerable.Range(0, 300).Select(i => (byte)(i * 37))])));
        yield return new(C, "load: empty", t => Kit.WithNegotiated(t, s => Load(s, [])));
        yield return new(C, "load: truncated (the magic alone)", t => Kit.WithNegotiated(t, s => Load(s, [.. "ECHO"u8, .. "VUNP"u8])));
        yield return new(C, "load: 16 MiB, far past any state", t => Kit.WithNegotiated(t, s =>
        {
            (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
            using (w)
            {
                using (r)
                {
                    Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r);
                }

                Fd.SetNonBlocking(w, true);
                byte[] chunk = new byte[64 * 1024];
                var clock = System.Diagnostics.Stopwatch.StartNew();
                for (long sent = 0; sent < 16 << 20 && clock.Elapsed < TimeSpan.FromSeconds(3);)
                {
                    int n = Fd.TryWrite(w, chunk, out Interop.Error errno);
                    if (n > 0)
                    {
                        sent += n;
                    }
                    else if (errno == Interop.Error.EAGAIN)
                    {
                        Thread.Sleep(5);
                    }
                    else
                    {
                        break;
                    }
                }
            }

            Check(s);
        }));
        yield return new(C, "phase 1 (not defined)", t => Kit.WithNegotiated(t, s => WithPipe(s, VhostUserTransferDirection.Save, (VhostUserTransferPhase)1)));
        yield return new(C, "phase 0xffffffff", t => Kit.WithNegotiated(t, s => WithPipe(s, VhostUserTransferDirection.Load, (VhostUserTransferPhase)uint.MaxValue)));
        yield return new(C, "direction 2 (not defined)", t => Kit.WithNegotiated(t, s => WithPipe(s, (VhostUserTransferDirection)2, VhostUserTransferPhase.Stopped)));
        yield return new(C, "a regular file instead of a pipe", t => Kit.WithNegotiated(t, s =>
        {
            using SafeFileHandle f = Kit.RegularFile(0x1000);
            Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, f);
            Check(s);
        }));
        yield return new(C, "an eventfd instead of a pipe", t => Kit.WithNegotiated(t, s =>
        {
            using Vhost.EventFd e = Kit.EventFd();
            Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, e);
            Check(s);
        }));
        yield return new(C, "/dev/null instead of a pipe", t => Kit.WithNegotiated(t, s =>
        {
            using SafeFileHandle f = Kit.DevNull();
            Transfer(s, VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped, f);
            Check(s);
        }));
        yield return new(C, "no fd", t => Kit.WithNegotiated(t, s => s.Send(FrontendRequest.SetDeviceStateFd, Transfer(VhostUserTransferDirection.Save, VhostUserTransferPhase.Stopped))));
        yield return new(C, "CHECK_DEVICE_STATE without a transfer, twice", t => Kit.WithNegotiated(t, s =>
        {
            Check(s);
            Check(s);
        }));
        yield return new(C, "a second transfer before the first is checked", t => Kit.WithNegotiated(t, s =>
        {
            (SafeFileHandle r1, SafeFileHandle w1) = Kit.Pipe();
            (SafeFileHandle r2, SafeFileHandle w2) = Kit.Pipe();
            using (w1)
            using (w2)
            {
                using (r1)
                using (r2)
                {
                    Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r1);
                    Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r2);
                }
            }

            Check(s);
        }));
        yield return new(C, "the front-end disconnects in the middle of a load", t => Kit.WithNegotiated(t, s =>
        {
            (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
            using (w)
            using (r)
            {
                Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r);
                Fd.Write(w, "EC"u8);
            }
        }));
    }

    /// <summary>SET_DEVICE_STATE_FD with <paramref name="fd"/>; returns the reply's u64 (0x100 = accepted with no fd back, low byte nonzero = refused, -1 = none).</summary>
    internal static long Transfer(HostileSession s, VhostUserTransferDirection direction, VhostUserTransferPhase phase, SafeHandle fd)
        => s.Send(FrontendRequest.SetDeviceStateFd, Transfer(direction, phase), [fd], needReply: false);

    /// <summary>CHECK_DEVICE_STATE; returns the reply's u64 (0 = the transfer succeeded).</summary>
    internal static long Check(HostileSession s) => s.Send(FrontendRequest.CheckDeviceState, ReadOnlySpan<byte>.Empty, needReply: false);

    /// <summary>A load of <paramref name="state"/>: SET_DEVICE_STATE_FD, the bytes, the pipe closed, CHECK_DEVICE_STATE.</summary>
    internal static long Load(HostileSession s, ReadOnlySpan<byte> state)
    {
        (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
        using (w)
        {
            using (r)
            {
                Transfer(s, VhostUserTransferDirection.Load, VhostUserTransferPhase.Stopped, r);
            }

            if (!state.IsEmpty)
            {
                Fd.Write(w, state);
            }
        }

        return Check(s);
    }

    private static byte[] Transfer(VhostUserTransferDirection direction, VhostUserTransferPhase phase)
        => HostileSession.Bytes(new VhostUserDeviceStateTransfer(direction, phase));

    private static void WithPipe(HostileSession s, VhostUserTransferDirection direction, VhostUserTransferPhase phase)
    {
        (SafeFileHandle r, SafeFileHandle w) = Kit.Pipe();
        using (r)
        using (w)
        {
            Transfer(s, direction, phase, direction == VhostUserTransferDirection.Save ? w : r);
        }
    }
}
