using Microsoft.Win32.SafeHandles;

namespace Vhost;

/// <summary>The shared memory that holds the dirty-page log (SET_LOG_BASE with LOG_SHMFD). The fd stays owned by the caller.</summary>
/// <param name="MmapSize">The size of the log mapping.</param>
/// <param name="MmapOffset">The offset of the log in <paramref name="Fd"/>.</param>
/// <param name="Fd">The fd of the log memory.</param>
public readonly record struct VhostDirtyLogRegion(ulong MmapSize, ulong MmapOffset, SafeFileHandle Fd);
