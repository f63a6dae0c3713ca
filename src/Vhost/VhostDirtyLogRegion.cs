using Microsoft.Win32.SafeHandles;

namespace Vhost;

/// <summary>The shared memory that holds the dirty-page log (SET_LOG_BASE with LOG_SHMFD). The fd stays owned by the caller.</summary>
public readonly struct VhostDirtyLogRegion
{
    /// <summary>Describes the log memory.</summary>
    /// <param name="mmapSize">The size of the log mapping.</param>
    /// <param name="mmapOffset">The offset of the log in <paramref name="fd"/>.</param>
    /// <param name="fd">The fd of the log memory.</param>
    public VhostDirtyLogRegion(ulong mmapSize, ulong mmapOffset, SafeFileHandle fd)
    {
        MmapSize = mmapSize;
        MmapOffset = mmapOffset;
        Fd = fd;
    }

    /// <summary>The size of the log mapping.</summary>
    public ulong MmapSize { get; }

    /// <summary>The offset of the log in <see cref="Fd"/>.</summary>
    public ulong MmapOffset { get; }

    /// <summary>The fd of the log memory.</summary>
    public SafeFileHandle Fd { get; }
}
