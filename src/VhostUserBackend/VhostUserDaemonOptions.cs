namespace VhostUserBackend;

/// <summary>
/// Security and policy settings of a <see cref="VhostUserDaemon"/>; the defaults suit QEMU and DPDK
/// out of the box. The daemon takes a copy when it is created: later changes do not reach it.
/// </summary>
public sealed class VhostUserDaemonOptions
{
    /// <summary>What the daemon demands of guest-RAM files (default <see cref="GuestMemoryFilePolicy.SealWhenPossible"/>).</summary>
    public GuestMemoryFilePolicy MemoryFilePolicy { get; set; } = GuestMemoryFilePolicy.SealWhenPossible;

    /// <summary>
    /// When not null: only front-ends whose process runs as one of these user ids (the
    /// socket's <c>SO_PEERCRED</c>) are served; others are disconnected at once and logged.
    /// The socket file's mode (0600 by default) is the first line; this is the second.
    /// </summary>
    public IReadOnlyCollection<uint>? AllowedPeerUserIds { get; set; }

    /// <summary>When not null: only front-ends whose process runs with one of these group ids (primary group, <c>SO_PEERCRED</c>) are served.</summary>
    public IReadOnlyCollection<uint>? AllowedPeerGroupIds { get; set; }

    /// <summary>
    /// How long the daemon waits for a device's outstanding requests before it stops a ring
    /// (GET_VRING_BASE, reset, disconnect) or changes guest memory (default 5 s). Chains still in
    /// flight then are abandoned: their inflight marks stay for the next back-end, their late
    /// completions are dropped, and their memory stays mapped until the device completes them
    /// (even past the end of the connection). Until then, and for at most this long again, the
    /// ring, once started again, takes no new chain, so a chain resubmitted from the inflight
    /// region or a buffer the driver reused is not overwritten by the device's old I/O landing late.
    /// </summary>
    public TimeSpan InFlightTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a device state transfer (SET_DEVICE_STATE_FD) may take on the daemon's side
    /// (default 30 s): a front-end that does not read the saved state, or does not close its end
    /// after writing the state to load, fails the transfer then, and CHECK_DEVICE_STATE says so.
    /// </summary>
    public TimeSpan DeviceStateTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Offer postcopy live migration (protocol feature PAGEFAULT; default false). On the
    /// destination, POSTCOPY_ADVISE then opens a userfaultfd that the front-end (QEMU with the
    /// <c>postcopy-ram</c> capability) reads, the memory table sent after POSTCOPY_LISTEN is
    /// answered with this process's mapping addresses and registered for missing-page faults, and
    /// POSTCOPY_END unregisters it: until a page has arrived, a worker that touches it waits for
    /// QEMU to fetch it from the source. CONFIGURE_MEM_SLOTS is not offered then (the spec does not
    /// allow both), so guest memory is limited to 8 regions. The daemon needs a userfaultfd that
    /// handles faults taken inside the kernel: root, CAP_SYS_PTRACE, <c>vm.unprivileged_userfaultfd=1</c>,
    /// or read-write access to <c>/dev/userfaultfd</c> (Linux 6.1+).
    /// </summary>
    public bool Postcopy { get; set; }

    /// <summary>
    /// VIRTIO_F_ACCESS_PLATFORM (a vIOMMU): how long a worker waits for the front-end to answer an
    /// IOTLB miss before the chain fails with <c>IotlbMiss</c> (default 1 s; 1 ms to 1 min). The
    /// front-end answers a miss for an IOVA the guest mapped at once; one it does not answer is an
    /// address the guest never mapped. The worker's other rings wait meanwhile.
    /// </summary>
    public TimeSpan IotlbMissTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// When not null: the daemon's workers run on the group's threads, shared with the other
    /// daemons of the group (the ports of a virtual switch), instead of threads of their own.
    /// The group's polling time replaces the device's. Default null.
    /// </summary>
    public VhostUserWorkerGroup? WorkerGroup { get; set; }

    /// <summary>
    /// Client mode (<see cref="VhostUserDaemon.Connect"/>): the pause before connecting again after a
    /// failed attempt or a lost front-end (default 100 ms). Each failure doubles it, up to
    /// <see cref="MaxReconnectDelay"/>; the daemon retries for as long as it runs.
    /// </summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Client mode: the longest pause between attempts (default 2 s). A connection that lasted at
    /// least this long starts the backoff over at <see cref="ReconnectDelay"/>.
    /// </summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Whether the peer with these credentials may be served.</summary>
    /// <param name="userId">The peer's uid.</param>
    /// <param name="groupId">The peer's gid.</param>
    /// <returns>True when every configured list contains the peer's id.</returns>
    public bool IsPeerAllowed(uint userId, uint groupId)
        => (AllowedPeerUserIds is null || AllowedPeerUserIds.Contains(userId))
            && (AllowedPeerGroupIds is null || AllowedPeerGroupIds.Contains(groupId));

    /// <summary>A copy whose collections are the caller's no longer (the daemon keeps this one).</summary>
    internal VhostUserDaemonOptions Snapshot() => new()
    {
        MemoryFilePolicy = MemoryFilePolicy,
        AllowedPeerUserIds = AllowedPeerUserIds is null ? null : [.. AllowedPeerUserIds],
        AllowedPeerGroupIds = AllowedPeerGroupIds is null ? null : [.. AllowedPeerGroupIds],
        InFlightTimeout = InFlightTimeout,
        DeviceStateTimeout = DeviceStateTimeout,
        WorkerGroup = WorkerGroup,
        ReconnectDelay = ReconnectDelay,
        MaxReconnectDelay = MaxReconnectDelay,
        Postcopy = Postcopy,
        IotlbMissTimeout = IotlbMissTimeout,
    };

    /// <summary>Checks the settings a daemon would refuse (the constructor runs this too): the reconnect delays must be a positive pause and a maximum at least as long, both at most an hour.</summary>
    /// <exception cref="ArgumentException">A setting is out of range (the message names it).</exception>
    public void Validate()
    {
        if (ReconnectDelay <= TimeSpan.Zero || ReconnectDelay > TimeSpan.FromHours(1))
        {
            throw new ArgumentException($"{nameof(ReconnectDelay)} must be positive and at most an hour, not {ReconnectDelay}", "options");
        }

        if (MaxReconnectDelay < ReconnectDelay || MaxReconnectDelay > TimeSpan.FromHours(1))
        {
            throw new ArgumentException($"{nameof(MaxReconnectDelay)} must lie between {nameof(ReconnectDelay)} ({ReconnectDelay}) and an hour, not {MaxReconnectDelay}", "options");
        }

        if (IotlbMissTimeout < TimeSpan.FromMilliseconds(1) || IotlbMissTimeout > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentException($"{nameof(IotlbMissTimeout)} must lie between 1 ms and a minute, not {IotlbMissTimeout}", "options");
        }
    }
}
