using Vhost.User.Messages;

namespace Vhost.User;

/// <summary>
/// The back-end's postcopy state for one connection (spec: "Migrating back-ends", postcopy):
/// POSTCOPY_ADVISE hands over a userfaultfd, POSTCOPY_LISTEN switches SET_MEM_TABLE and ADD_MEM_REG
/// to answer with the back-end's region list, which the front-end then acknowledges with a u64 0
/// of the same code, and POSTCOPY_END switches back. Nothing else in the dispatcher holds postcopy state.
/// </summary>
/// <remarks>
/// The order ADVISE → LISTEN → END is what QEMU sends. A LISTEN without an ADVISE is accepted (a
/// back-end may have nothing to advise, and the front-end decides), but it is recorded
/// (<see cref="Advised"/>) so a handler can tell; END always returns to the initial state.
/// </remarks>
internal sealed class VhostUserPostcopyState
{
    /// <summary>POSTCOPY_ADVISE was answered (and no END since).</summary>
    internal bool Advised { get; private set; }

    /// <summary>POSTCOPY_LISTEN was handled and POSTCOPY_END not yet.</summary>
    internal bool Listening { get; private set; }

    /// <summary>A region list was sent and the front-end's u64 acknowledgement is awaited.</summary>
    internal bool AcknowledgementPending { get; private set; }

    /// <summary>POSTCOPY_ADVISE succeeded.</summary>
    internal void Advise() => Advised = true;

    /// <summary>POSTCOPY_LISTEN succeeded.</summary>
    internal void Listen() => Listening = true;

    /// <summary>POSTCOPY_END: back to the initial state (also when the handler then fails).</summary>
    internal void End()
    {
        Advised = false;
        Listening = false;
        AcknowledgementPending = false;
    }

    /// <summary>A region list was sent for SET_MEM_TABLE or ADD_MEM_REG.</summary>
    internal void RegionsSent() => AcknowledgementPending = true;

    /// <summary>Whether <paramref name="request"/> is answered with a region list now (so its failure is a u64 1, whatever NEED_REPLY says).</summary>
    internal bool AnswersWithRegions(FrontendRequest request)
        => Listening && request is FrontendRequest.SetMemTable or FrontendRequest.AddMemReg;

    /// <summary>
    /// Whether a message is the front-end's answer to a region list: QEMU sends the request code it
    /// used (SET_MEM_TABLE, or ADD_MEM_REG / REM_MEM_REG after a batch of slot changes) with a u64 0.
    /// No real request of those codes is 8 bytes without fds, so the shape identifies it. Taking it
    /// clears the pending acknowledgement.
    /// </summary>
    internal bool TakeAcknowledgement(FrontendRequest request, VhostUserMessage message)
    {
        if (!AcknowledgementPending
            || request is not (FrontendRequest.SetMemTable or FrontendRequest.AddMemReg or FrontendRequest.RemMemReg)
            || message.Body.Length != sizeof(ulong) || message.Fds.Count != 0)
        {
            return false;
        }

        AcknowledgementPending = false;
        return true;
    }
}
