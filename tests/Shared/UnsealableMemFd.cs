using Microsoft.Win32.SafeHandles;

namespace Vhost.TestSupport;

/// <summary>Guest RAM a daemon cannot seal against shrinking, as DPDK sends it.</summary>
internal static class UnsealableMemFd
{
    /// <summary>A memfd made without <c>MFD_ALLOW_SEALING</c> (its seals are <c>F_SEAL_SEAL</c> alone) of <paramref name="size"/> bytes.</summary>
    /// <param name="size">The size.</param>
    /// <returns>The fd.</returns>
    public static SafeFileHandle Create(long size)
    {
        int fd = Interop.memfd_create("unsealable", Interop.MFD_CLOEXEC);
        Assert.True(fd >= 0);
        SafeFileHandle h = Fd.Own(fd);
        Fd.Truncate(h, size);
        return h;
    }
}
