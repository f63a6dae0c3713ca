using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Vhost;
using VhostUserBackend.Memory;

namespace VhostUserBackend.Migration;

/// <summary>
/// The back-end's side of one postcopy migration (PAGEFAULT; vhost-user.rst "Migrating back-ends"),
/// from POSTCOPY_ADVISE to POSTCOPY_END: the userfaultfd (its other copy goes to the front-end,
/// which reads and resolves the faults), and the guest memory regions registered with it.
/// </summary>
/// <remarks>
/// <para>Order, as QEMU's destination does it: ADVISE opens the userfaultfd; LISTEN switches
/// SET_MEM_TABLE / ADD_MEM_REG to answer with this process's mapping addresses
/// (<see cref="ReportMapping"/>); once the front-end acknowledges them,
/// <see cref="RegisterReported"/> drops any page this process already has mapped there and
/// registers the mappings for missing-page faults. From then on a thread of this process that
/// touches a page that has not arrived yet sleeps in the fault until the front-end has placed the
/// page (in the shared file) and woken it; the control thread is never the one that has to read
/// the userfaultfd. END (or the end of the connection) unregisters every range, which wakes any
/// thread still waiting, and closes the fd.</para>
/// <para>Control thread only.</para>
/// </remarks>
internal sealed class PostcopySession : IDisposable
{
    private readonly SafeFileHandle _uffd;
    private readonly ILogger _logger;
    private readonly List<GuestMemoryRegion> _reported = [];
    private readonly List<GuestMemoryRegion> _registered = [];
    private bool _abandoned;

    private PostcopySession(SafeFileHandle uffd, ILogger logger)
    {
        _uffd = uffd;
        _logger = logger;
    }

    /// <summary>Whether POSTCOPY_LISTEN was handled.</summary>
    public bool IsListening { get; private set; }

    /// <summary>POSTCOPY_ADVISE: opens the userfaultfd and does the API handshake.</summary>
    /// <exception cref="VhostException">The kernel refused a userfaultfd (the message says what the operator can change) or the handshake.</exception>
    public static PostcopySession Advise(ILogger logger)
    {
        SafeFileHandle uffd = UserFaultFd.Open();
        try
        {
            ulong ioctls = UserFaultFd.Handshake(uffd);
            Log.PostcopyAdvised(logger, ioctls);
            return new PostcopySession(uffd, logger);
        }
        catch
        {
            uffd.Dispose();
            throw;
        }
    }

    /// <summary>A copy of the userfaultfd for the front-end (the dispatcher sends and closes it).</summary>
    public SafeFileHandle DuplicateForFrontend() => Fd.Duplicate(_uffd);

    /// <summary>POSTCOPY_LISTEN.</summary>
    /// <param name="mappedRegions">Guest memory regions mapped before it: their addresses were never reported, so their faults could not be resolved.</param>
    /// <exception cref="InvalidOperationException">LISTEN twice, or memory already mapped.</exception>
    public void Listen(int mappedRegions)
    {
        if (IsListening)
        {
            throw new InvalidOperationException("POSTCOPY_LISTEN: already listening (send POSTCOPY_END first)");
        }

        if (mappedRegions != 0)
        {
            throw new InvalidOperationException($"POSTCOPY_LISTEN: {mappedRegions} guest memory region(s) are already mapped; postcopy needs the memory table to come after LISTEN, so that the front-end learns where it is mapped");
        }

        IsListening = true;
        Log.PostcopyListening(_logger);
    }

    /// <summary>
    /// SET_MEM_TABLE / ADD_MEM_REG while listening: <paramref name="region"/>'s mapping address goes
    /// to the front-end; the region is registered when the front-end acknowledges the list. The
    /// session holds a reference, so the mapping outlives its registration.
    /// </summary>
    public unsafe ulong ReportMapping(GuestMemoryRegion region)
    {
        if (!_reported.Contains(region) && !_registered.Contains(region))
        {
            if (!region.TryAddReference())
            {
                throw new InvalidOperationException($"postcopy: {region} is already unmapped");
            }

            _reported.Add(region);
        }

        return (ulong)region.Host;
    }

    /// <summary>
    /// The front-end acknowledged the reported addresses: each reported mapping loses the pages this
    /// process may have touched (MADV_DONTNEED: the shared file keeps them) and is registered for
    /// missing-page faults.
    /// </summary>
    /// <exception cref="VhostException">UFFDIO_REGISTER failed (a file type the kernel's userfaultfd does not support, for example).</exception>
    public unsafe void RegisterReported()
    {
        while (_reported.Count > 0)
        {
            GuestMemoryRegion region = _reported[0];
            nint start = (nint)region.Host;
            ErrnoChecks.Check(Interop.madvise(start, region.MappedLength, Interop.MADV_DONTNEED), "madvise(MADV_DONTNEED)", region.ToString());
            ulong ioctls = UserFaultFd.RegisterMissing(_uffd, start, region.MappedLength);
            _reported.RemoveAt(0);
            _registered.Add(region);
            if ((ioctls & (1UL << UserFaultFd.WakeIoctlBit)) == 0)
            {
                throw new InvalidOperationException($"postcopy: the kernel cannot wake faults in {region} (UFFDIO_REGISTER reported ioctls 0x{ioctls:x})");
            }

            Log.PostcopyRegistered(_logger, region.GuestPhysicalAddress, region.Size, (ulong)start);
        }
    }

    /// <summary>
    /// The front-end left while a worker may sleep in one of its faults: unregisters every range
    /// now (waking such a worker), once; <see cref="Dispose"/> still releases the mappings.
    /// </summary>
    public void AbandonFaults()
    {
        if (_abandoned || _uffd.IsClosed)
        {
            return;
        }

        _abandoned = true;
        Unregister();
        Log.PostcopyAbandoned(_logger, _registered.Count);
    }

    /// <summary>POSTCOPY_END or the end of the connection: unregisters every range (waking any thread in a fault), releases the mappings and closes the userfaultfd.</summary>
    public void Dispose()
    {
        if (_uffd.IsClosed)
        {
            return;
        }

        int count = _registered.Count;
        if (!_abandoned)
        {
            Unregister();
        }

        foreach (GuestMemoryRegion region in _registered)
        {
            region.ReleaseReference();
        }

        foreach (GuestMemoryRegion region in _reported)
        {
            region.ReleaseReference();
        }

        _registered.Clear();
        _reported.Clear();
        _uffd.Dispose();
        Log.PostcopyEnded(_logger, count);
    }

    private void Unregister()
    {
        foreach (GuestMemoryRegion region in _registered)
        {
            try
            {
                unsafe
                {
                    UserFaultFd.Unregister(_uffd, (nint)region.Host, region.MappedLength);
                }
            }
            catch (VhostException e)
            {
                Log.PostcopyUnregisterFailed(_logger, region.GuestPhysicalAddress, e.Message);
            }
        }
    }
}
