using Microsoft.Win32.SafeHandles;
using Vhost;
using Vhost.User;

namespace VhostUserBackend.Memory;

/// <summary>Applies a <see cref="GuestMemoryFilePolicy"/> to a guest-RAM file before it is mapped.</summary>
internal static class GuestMemoryFileSeals
{
    /// <summary>What the check found.</summary>
    internal enum State
    {
        /// <summary>The policy is <see cref="GuestMemoryFilePolicy.Trust"/>; nothing was looked at.</summary>
        NotChecked,

        /// <summary>The file was already sealed against shrinking.</summary>
        Sealed,

        /// <summary>The daemon added <c>F_SEAL_SHRINK</c>.</summary>
        SealedByDaemon,

        /// <summary>The file cannot be sealed (no sealing support, or sealing was closed without the shrink seal).</summary>
        Unsealable,
    }

    /// <summary>Checks (and where allowed adds) the shrink seal.</summary>
    /// <param name="fd">The file.</param>
    /// <param name="policy">The daemon's policy.</param>
    /// <param name="isLog">The file is the dirty log: it must be a memfd (QEMU and rust-vmm front-ends send one), whatever the policy.</param>
    /// <exception cref="VhostUserException">Strict policy and the file is not sealed against shrinking, or a log that is not a memfd (a <see cref="VhostUserProtocolException"/>).</exception>
    internal static State Enforce(SafeFileHandle fd, GuestMemoryFilePolicy policy, bool isLog = false)
    {
        if (isLog && !IsMemfd(fd))
        {
            throw new VhostUserProtocolException(VhostUserViolation.InvalidMessage, "SET_LOG_BASE: the dirty log is not a memfd (a file that cannot carry seals could be shrunk under the daemon); send a memfd");
        }

        if (policy == GuestMemoryFilePolicy.Trust)
        {
            return State.NotChecked;
        }

        State state = Seal(fd);
        if (state == State.Unsealable && policy == GuestMemoryFilePolicy.RequireShrinkSeal)
        {
            throw new VhostUserProtocolException(
                VhostUserViolation.InvalidMessage,
                "guest memory file is not sealed against shrinking (F_SEAL_SHRINK) and cannot be sealed; the daemon runs with MemoryFilePolicy=RequireShrinkSeal (use a memfd with seals, e.g. QEMU memory-backend-memfd seal=on)");
        }

        return state;
    }

    /// <summary>memfds (and other shmem files) answer F_GET_SEALS; other files fail with EINVAL.</summary>
    private static bool IsMemfd(SafeFileHandle fd)
    {
        try
        {
            Fd.GetSeals(fd);
            return true;
        }
        catch (VhostException e) when (e.Errno == Errno.EINVAL)
        {
            return false;
        }
    }

    private static State Seal(SafeFileHandle fd)
    {
        int seals;
        try
        {
            seals = Fd.GetSeals(fd);
        }
        catch (VhostException e) when (e.Errno == Errno.EINVAL)
        {
            return State.Unsealable;
        }

        if ((seals & Interop.F_SEAL_SHRINK) != 0)
        {
            return State.Sealed;
        }

        if ((seals & Interop.F_SEAL_SEAL) != 0)
        {
            return State.Unsealable;
        }

        try
        {
            Fd.AddSeals(fd, Interop.F_SEAL_SHRINK);
            return State.SealedByDaemon;
        }
        catch (VhostException e) when (e.Errno is Errno.EPERM or Errno.EBUSY or Errno.EINVAL)
        {
            // EPERM: sealed meanwhile; EBUSY cannot happen for SHRINK (only WRITE with writable maps).
            return (Fd.GetSeals(fd) & Interop.F_SEAL_SHRINK) != 0 ? State.Sealed : State.Unsealable;
        }
    }
}
