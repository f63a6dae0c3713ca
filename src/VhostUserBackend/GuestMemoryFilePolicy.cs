namespace VhostUserBackend;

/// <summary>
/// What the daemon demands of the files a front-end sends as guest RAM (SET_MEM_TABLE,
/// ADD_MEM_REG), against a front-end that shrinks the file after the daemon mapped it: any access
/// to a mapped page past the new end of the file raises SIGBUS. On linux-x64 the daemon's
/// guest-memory fault guard catches it and drops that connection (docs/security.md); elsewhere
/// (no guard) the process dies.
/// </summary>
/// <remarks>
/// The defence is the memfd seal <c>F_SEAL_SHRINK</c>: once set, the kernel refuses every
/// <c>ftruncate</c> that would shrink the file (EPERM), for every process. QEMU's
/// <c>memory-backend-memfd</c> seals by default (<c>seal=on</c>: grow, shrink and seal);
/// DPDK's memfds and hugetlbfs files, and QEMU's <c>memory-backend-file</c>, cannot be sealed.
/// See docs/security.md.
/// </remarks>
public enum GuestMemoryFilePolicy
{
    /// <summary>Map any mappable file; do not look at seals (the behaviour of the C and Rust back-ends).</summary>
    Trust = 0,

    /// <summary>
    /// The default. A file already sealed against shrinking is mapped; a memfd that allows
    /// sealing but is not sealed gets <c>F_SEAL_SHRINK</c> added by the daemon before it is mapped
    /// (the front-end can still grow it); a file that cannot be sealed (hugetlbfs, tmpfs or disk
    /// files, memfds created without <c>MFD_ALLOW_SEALING</c>) is mapped as it is, with a warning:
    /// a shrink then costs the connection (the fault guard), or the process where the guard is
    /// unavailable.
    /// </summary>
    SealWhenPossible = 1,

    /// <summary>
    /// Strict: after trying to add the seal as <see cref="SealWhenPossible"/> does, refuse any file
    /// not sealed against shrinking; the request fails with a clear reason (and a failed REPLY_ACK).
    /// </summary>
    RequireShrinkSeal = 2,
}
