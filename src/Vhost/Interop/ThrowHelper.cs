using System.Runtime.InteropServices;
using Vhost;

/// <summary>
/// The Vhost assembly's side of the interop layer's errors: the linked src/Common files report errno
/// values, and this turns them into the public <see cref="VhostException"/> (with the errno in <see cref="VhostException.ErrorCode"/>).
/// </summary>
internal static class ThrowHelper
{
    /// <summary>The exception for a failed system call (used by src/Common's <c>ErrnoChecks</c>).</summary>
    internal static VhostException ErrnoException(int errno, string operation, string? detail = null)
        => new((Errno)errno, operation, detail);
}

/// <summary>The errno of the last import as the internal <see cref="Errno"/>.</summary>
internal static partial class Interop
{
    /// <summary>Reads errno of the last import; call it right after the import.</summary>
    internal static Errno LastErrno => (Errno)Marshal.GetLastPInvokeError();
}
