using Vhost;
using Vhost.User.Messages;
using VhostUserBackend.Memory;
using VhostUserBackend.Virtio;

namespace VhostUserBackend.Iommu;

/// <summary>Translation through the IOTLB: buffers for the data path (waiting for a miss to be answered) and ring areas for the control thread (never waiting).</summary>
internal sealed partial class Iotlb
{
    /// <summary>
    /// Translates the start of a buffer at <c>[iova, +length)</c> (the caller checked it does not
    /// wrap, <paramref name="length"/> ≥ 1) to guest physical memory: the longest prefix that is
    /// contiguous there, at least one byte. A miss is sent to the front-end and waited for, at most
    /// <see cref="MissTimeout"/> in all.
    /// </summary>
    /// <param name="memory">The guest memory the translation must land in.</param>
    /// <param name="iova">First IOVA.</param>
    /// <param name="length">Bytes wanted.</param>
    /// <param name="write">Whether the device writes there (needs write permission; otherwise read permission).</param>
    /// <param name="run">How many bytes from <paramref name="iova"/> on the result covers (1..<paramref name="length"/>).</param>
    /// <returns>The guest physical address of <paramref name="iova"/>.</returns>
    /// <exception cref="VirtqueueException"><c>IotlbMiss</c> (no translation in time, or no back-end channel to ask for one), <c>IotlbAccessDenied</c> (the mapping lacks the permission), <c>IotlbNotGuestMemory</c> (it maps outside guest memory).</exception>
    internal ulong Translate(GuestMemory memory, ulong iova, ulong length, bool write, out ulong run)
    {
        long deadline = 0;
        ulong asked = ulong.MaxValue;
        while (true)
        {
            long seen = Version;
            Fault fault = TryTranslate(memory, iova, length, write, out ulong gpa, out run, out ulong at);
            if (fault == Fault.None)
            {
                return gpa;
            }

            if (fault != Fault.Miss)
            {
                throw Error(fault, at, write);
            }

            long now = Environment.TickCount64;
            if (deadline == 0)
            {
                deadline = now + (long)Math.Ceiling(MissTimeout.TotalMilliseconds);
            }

            if (at != asked)
            {
                // Asked once per address: an update that covers something else wakes the wait up
                // but does not repeat the question.
                SendMiss(at, write);
                asked = at;
            }

            if (now >= deadline || !WaitForChange(seen, TimeSpan.FromMilliseconds(deadline - now)))
            {
                throw new VirtqueueException(VirtqueueError.IotlbMiss, $"IOVA 0x{at:x} ({(write ? "write" : "read")}) has no IOTLB translation: the front-end did not answer the miss within {MissTimeout.TotalMilliseconds:0} ms");
            }
        }
    }

    /// <summary>Copies <paramref name="destination"/>.Length bytes at <paramref name="iova"/> out of guest memory through the IOTLB (read permission), waiting for misses as <see cref="Translate"/> does.</summary>
    /// <exception cref="VirtqueueException">As <see cref="Translate"/>, or <c>BufferAddressOverflow</c> when the range wraps.</exception>
    internal void Read(GuestMemory memory, ulong iova, Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        if (iova > ulong.MaxValue - (ulong)(destination.Length - 1))
        {
            throw new VirtqueueException(VirtqueueError.BufferAddressOverflow, $"IOVA 0x{iova:x} + 0x{destination.Length:x} wraps past 2^64");
        }

        while (!destination.IsEmpty)
        {
            ulong gpa = Translate(memory, iova, (ulong)destination.Length, write: false, out ulong run);
            memory.Read(gpa, destination[..(int)run]);
            destination = destination[(int)run..];
            iova += run;
        }
    }

    /// <summary>
    /// Translates a ring area <c>[iova, +length)</c> to the front-end's user address space, for
    /// the control thread: the whole area must be mapped, contiguously in user addresses, with
    /// <paramref name="access"/>. Never waits: on a miss the caller asks (<see cref="SendMiss"/>)
    /// and tries again when an update arrives.
    /// </summary>
    /// <param name="iova">First IOVA of the area.</param>
    /// <param name="length">Its size in bytes (≥ 1).</param>
    /// <param name="access">The permission the device needs there.</param>
    /// <param name="userAddress">The area's user address when the result is <see cref="Fault.None"/>.</param>
    /// <param name="faultIova">The first IOVA that failed otherwise.</param>
    /// <returns>What failed, or <see cref="Fault.None"/>.</returns>
    internal Fault TryTranslateArea(ulong iova, ulong length, VhostIotlbAccess access, out ulong userAddress, out ulong faultIova)
    {
        userAddress = 0;
        faultIova = iova;
        if (length == 0 || iova > ulong.MaxValue - (length - 1))
        {
            return Fault.NotGuestMemory;
        }

        ulong at = iova;
        ulong left = length;
        ulong expected = 0;
        while (true)
        {
            faultIova = at;
            if (!TryFind(at, out Entry e))
            {
                return Fault.Miss;
            }

            if ((e.Permission & access) != access)
            {
                return Fault.AccessDenied;
            }

            ulong user = e.UserAddress + (at - e.Iova);
            if (at == iova)
            {
                userAddress = user;
            }
            else if (user != expected)
            {
                // Contiguous IOVAs, scattered user addresses: a ring area must be one host range.
                return Fault.NotGuestMemory;
            }

            ulong pieceMinus1 = Math.Min(e.Last - at, left - 1);
            left -= pieceMinus1 + 1;
            if (left == 0)
            {
                return Fault.None;
            }

            at += pieceMinus1 + 1;
            expected = user + pieceMinus1 + 1;
        }
    }

    /// <summary>Asks the front-end for the translation of <paramref name="iova"/> (IOTLB_MSG of type MISS on the back-end channel, without NEED_REPLY).</summary>
    /// <exception cref="VirtqueueException"><c>IotlbMiss</c>: there is no back-end channel, or it broke.</exception>
    internal void SendMiss(ulong iova, bool write)
    {
        Action<ulong, VhostIotlbAccess> send = MissSender
            ?? throw new VirtqueueException(VirtqueueError.IotlbMiss, $"IOVA 0x{iova:x} has no IOTLB translation and there is no back-end channel to ask the front-end for one");
        try
        {
            send(iova, write ? VhostIotlbAccess.WriteOnly : VhostIotlbAccess.ReadOnly);
        }
        catch (Exception e) when (e is VhostException or InvalidOperationException or ObjectDisposedException)
        {
            throw new VirtqueueException(VirtqueueError.IotlbMiss, $"IOVA 0x{iova:x} has no IOTLB translation and the miss could not be sent: {e.Message}");
        }
    }

    /// <summary>The ring error for a failed translation.</summary>
    internal static VirtqueueException Error(Fault fault, ulong iova, bool write) => fault switch
    {
        Fault.AccessDenied => new VirtqueueException(VirtqueueError.IotlbAccessDenied, $"IOVA 0x{iova:x} is mapped without {(write ? "write" : "read")} permission"),
        Fault.Miss => new VirtqueueException(VirtqueueError.IotlbMiss, $"IOVA 0x{iova:x} has no IOTLB translation"),
        _ => new VirtqueueException(VirtqueueError.IotlbNotGuestMemory, $"IOVA 0x{iova:x} translates to a front-end address outside guest memory"),
    };

    /// <summary>
    /// One non-waiting translation step (see <see cref="Translate"/>): <see cref="Fault.None"/> with
    /// the first contiguous run, <see cref="Fault.Miss"/> when an IOVA up to the run's end has no
    /// entry (<paramref name="faultIova"/>), or why not even the first byte translates.
    /// </summary>
    private Fault TryTranslate(GuestMemory memory, ulong iova, ulong length, bool write, out ulong gpa, out ulong run, out ulong faultIova)
    {
        VhostIotlbAccess need = write ? VhostIotlbAccess.WriteOnly : VhostIotlbAccess.ReadOnly;
        gpa = 0;
        run = 0;
        faultIova = iova;
        ulong at = iova;
        ulong left = length;
        while (true)
        {
            if (!TryFind(at, out Entry e))
            {
                // Also after a partial run: the run must not depend on what the cache holds at the
                // moment (a chain is walked more than once, and each walk must give the same
                // buffers), so the rest is fetched first and the run taken as far as it goes.
                faultIova = at;
                return Fault.Miss;
            }

            if ((e.Permission & need) != need)
            {
                faultIova = at;
                return run == 0 ? Fault.AccessDenied : Fault.None;
            }

            if (!memory.TryTranslateUserAddress(e.UserAddress + (at - e.Iova), out ulong g, out ulong regionLeft))
            {
                faultIova = at;
                return run == 0 ? Fault.NotGuestMemory : Fault.None;
            }

            if (run == 0)
            {
                gpa = g;
            }
            else if (g != gpa + run)
            {
                return Fault.None;
            }

            ulong pieceMinus1 = Math.Min(Math.Min(e.Last - at, regionLeft - 1), left - 1);
            run += pieceMinus1 + 1;
            left -= pieceMinus1 + 1;
            if (left == 0)
            {
                return Fault.None;
            }

            at += pieceMinus1 + 1;
        }
    }

    /// <summary>Why a translation failed.</summary>
    internal enum Fault
    {
        /// <summary>It did not.</summary>
        None,

        /// <summary>No entry covers the IOVA.</summary>
        Miss,

        /// <summary>The entry lacks the permission.</summary>
        AccessDenied,

        /// <summary>The entry maps outside guest memory (or a ring area is not one contiguous range).</summary>
        NotGuestMemory,
    }
}
