using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace VhostUserBackend.Tests;

internal static class TestHelpers
{
    /// <summary>Disposes a connection's memory holder (the daemon's job; internal, so not <c>IDisposable</c>) at the end of a <c>using</c>.</summary>
    public static AtomicOwner Owning(VhostUserBackend.Memory.GuestMemoryAtomic atomic) => new(atomic);

    public readonly struct AtomicOwner(VhostUserBackend.Memory.GuestMemoryAtomic atomic) : IDisposable
    {
        public void Dispose() => atomic.Dispose();
    }

    /// <summary>Open fds after pending finalizers ran (the shared <see cref="Vhost.TestSupport.OpenFds"/> count), so a handle another test dropped cannot close mid-measurement.</summary>
    public static int OpenFdCount() => Vhost.TestSupport.OpenFds.Count();

    public static SafeFileHandle MemFd(long size) => Fd.CreateMemFd("test", size);

    /// <summary>
    /// Whether a memfd mapping (guest memory) in /proc/self/maps intersects [start, start + length).
    /// Other mappings are not counted: a thread stack or heap the runtime maps meanwhile may reuse
    /// the addresses of a region just unmapped (seen in CI: a false "still mapped").
    /// </summary>
    public static bool IsMapped(nuint start, ulong length)
    {
        ulong s = start;
        ulong e = s + length;
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            ulong ms = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong me = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (ms < e && s < me && line.Contains("/memfd:", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
