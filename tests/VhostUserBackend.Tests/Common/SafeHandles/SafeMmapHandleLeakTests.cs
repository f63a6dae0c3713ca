using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace VhostUserBackend.Tests.Common.SafeHandles;

/// <summary>Mapping tests that read /proc/self/maps or count fds: they run alone, so no other test maps the freed range meanwhile.</summary>
[Collection("FdCount")]
public sealed unsafe class SafeMmapHandleLeakTests
{
    private static readonly int PageSize = Environment.SystemPageSize;

    [Fact]
    public void Dispose_unmaps()
    {
        using SafeFileHandle memfd = Fd.CreateMemFd("unmap", PageSize);
        SafeMmapHandle map = SafeMmapHandle.MapShared(memfd, 0, (ulong)PageSize);
        nint address = (nint)map.Pointer;
        Assert.True(IsMapped(address));
        map.Dispose();
        map.Dispose();
        Assert.True(map.IsClosed);
        Assert.False(IsMapped(address));
    }

    [Fact]
    public void Mapping_and_unmapping_leaves_fds_and_mappings_unchanged()
    {
        int fdsBefore = OpenFds.Count();
        using (SafeFileHandle memfd = Fd.CreateMemFd("churn", 4L * PageSize))
        {
            for (int i = 0; i < 100; i++)
            {
                using SafeMmapHandle map = SafeMmapHandle.MapShared(memfd, 0, (ulong)(4 * PageSize));
                map.Pointer[i] = (byte)i;
            }
        }

        Assert.Equal(fdsBefore, OpenFds.Count());
    }

    /// <summary>Whether <paramref name="address"/> starts a range in /proc/self/maps.</summary>
    private static bool IsMapped(nint address)
    {
        string start = ((long)address).ToString("x", CultureInfo.InvariantCulture) + "-";
        return File.ReadLines("/proc/self/maps").Any(line => line.StartsWith(start, StringComparison.Ordinal));
    }
}
