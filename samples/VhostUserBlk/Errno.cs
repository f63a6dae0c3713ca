using System.Globalization;
using System.Runtime.InteropServices;

namespace VhostUserBlk;

/// <summary>
/// The Linux errno values this device tells apart (generic values shared by x86_64 and aarch64,
/// from <c>&lt;errno.h&gt;</c>). The libraries carry an errno as a plain <see cref="int"/>
/// (<see cref="Vhost.VhostException.ErrorCode"/>, <see cref="VhostUserBackend.IO.IoUringCompletion.ErrorCode"/>).
/// </summary>
internal static class Errno
{
    internal const int None = 0;
    internal const int EINTR = 4;
    internal const int EAGAIN = 11;
    internal const int EACCES = 13;
    internal const int EINVAL = 22;
    internal const int ENOSYS = 38;
    internal const int EOPNOTSUPP = 95;

    /// <summary>An errno for a log line: its C name where this class knows it, and the C library's text.</summary>
    internal static string Describe(int errno)
    {
        string name = errno switch
        {
            EINTR => "EINTR",
            EAGAIN => "EAGAIN",
            EACCES => "EACCES",
            EINVAL => "EINVAL",
            ENOSYS => "ENOSYS",
            EOPNOTSUPP => "EOPNOTSUPP",
            _ => "errno " + errno.ToString(CultureInfo.InvariantCulture),
        };
        return $"{name} ({Marshal.GetPInvokeErrorMessage(errno)})";
    }
}
