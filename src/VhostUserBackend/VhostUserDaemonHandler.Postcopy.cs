using Microsoft.Win32.SafeHandles;
using Vhost.User.Messages;
using VhostUserBackend.Memory;
using VhostUserBackend.Migration;

namespace VhostUserBackend;

/// <summary>Postcopy (PAGEFAULT): the handler's side, delegating to <see cref="PostcopySession"/>.</summary>
internal sealed partial class VhostUserDaemonHandler
{
    /// <summary>POSTCOPY_ADVISE: opens the userfaultfd; a copy goes to the front-end.</summary>
    public SafeFileHandle PostcopyAdvise()
    {
        if (_postcopy is not null)
        {
            throw new InvalidOperationException("POSTCOPY_ADVISE: postcopy is already advised on this connection (its userfaultfd stays until POSTCOPY_END)");
        }

        _postcopy = PostcopySession.Advise(_logger);
        return _postcopy.DuplicateForFrontend();
    }

    /// <summary>POSTCOPY_LISTEN: needs an ADVISE before it and no memory mapped yet.</summary>
    public void PostcopyListen()
    {
        PostcopySession session = _postcopy ?? throw new InvalidOperationException("POSTCOPY_LISTEN without POSTCOPY_ADVISE: there is no userfaultfd to register the memory with");
        GuestMemory memory = _memory.Acquire();
        int mapped = memory.Regions.Count;
        memory.Release();
        session.Listen(mapped);
    }

    /// <summary>POSTCOPY_END: unregisters the memory and closes the userfaultfd.</summary>
    public void PostcopyEnd()
    {
        PostcopySession session = _postcopy ?? throw new InvalidOperationException("POSTCOPY_END without POSTCOPY_ADVISE");
        _postcopy = null;
        session.Dispose();
    }

    /// <summary>While listening: the address at which the region just mapped lives in this process.</summary>
    public bool TryGetPostcopyMappingAddress(in VhostUserMemoryRegion region, out ulong mappingAddress)
    {
        mappingAddress = 0;
        if (_postcopy is not { IsListening: true } session)
        {
            return false;
        }

        GuestMemory memory = _memory.Acquire();
        try
        {
            foreach (GuestMemoryRegion mapped in memory.Regions)
            {
                if (mapped.GuestPhysicalAddress == region.GuestPhysicalAddress && mapped.Size == region.MemorySize && mapped.UserAddress == region.UserAddress)
                {
                    mappingAddress = session.ReportMapping(mapped);
                    return true;
                }
            }

            return false;
        }
        finally
        {
            memory.Release();
        }
    }

    /// <summary>The connection's socket, which a pause watches for the front-end leaving (set by the daemon).</summary>
    internal SafeFileHandle? FrontendSocket { get; set; }

    /// <summary>
    /// While the control thread waits for a worker to pause: a worker asleep in a page fault only
    /// the front-end can resolve never parks. A front-end that stays connected may resolve it later
    /// (QEMU's postcopy-paused state, then migrate-recover), so the pause waits; one that has left
    /// never will, so its ranges are unregistered, which wakes the worker (what it reads then is the
    /// file's page as it is, and nothing it completes reaches a front-end), and the pause ends.
    /// </summary>
    private void AbandonFaultsIfFrontendLeft()
    {
        if (_postcopy is { } session && FrontendSocket is { } socket && UnixSocket.PeerHasClosed(socket))
        {
            session.AbandonFaults();
        }
    }

    /// <summary>The front-end has the addresses: register the reported mappings for missing-page faults.</summary>
    public void PostcopyMemoryAcknowledged() => _postcopy?.RegisterReported();
}
