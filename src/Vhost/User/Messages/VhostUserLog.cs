using System.Runtime.InteropServices;

namespace Vhost.User.Messages;

/// <summary>The SET_LOG_BASE payload with LOG_SHMFD: the dirty-log area inside the attached fd (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct VhostUserLog
{
    /// <summary>The size of the log mapping.</summary>
    public ulong MmapSize;

    /// <summary>The offset of the log in the fd.</summary>
    public ulong MmapOffset;

    /// <summary>Creates the payload.</summary>
    /// <param name="mmapSize">The mapping size.</param>
    /// <param name="mmapOffset">The offset in the fd.</param>
    public VhostUserLog(ulong mmapSize, ulong mmapOffset)
    {
        MmapSize = mmapSize;
        MmapOffset = mmapOffset;
    }

    /// <summary>Syntax check: non-zero size, no wrap.</summary>
    /// <returns><see langword="true"/> when well formed.</returns>
    public readonly bool IsValid() => MmapSize != 0 && MmapOffset <= ulong.MaxValue - MmapSize;
}
