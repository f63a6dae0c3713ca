using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>
    /// A Linux errno value as the interop layer reports it (any errno fits; the members are the
    /// ones this layer tests for). Each assembly turns it into its own public error type.
    /// </summary>
    internal enum Error
    {
        /// <summary>No error.</summary>
        None = 0,
        ENOENT = 2,
        EINTR = 4,
        EIO = 5,
        EAGAIN = 11,
        ENOTDIR = 20,
        EINVAL = 22,
        EPIPE = 32,
        ENOTSOCK = 88,
        ECONNABORTED = 103,
        ENOBUFS = 105,
        ENOTCONN = 107,
    }

    /// <summary>Reads errno of the last import (all imports set <c>SetLastError = true</c>); call it right after the import.</summary>
    internal static Error LastError => (Error)Marshal.GetLastPInvokeError();

    /// <summary>
    /// The one EINTR policy of the layer: <see langword="true"/> when <paramref name="result"/>
    /// is a failure with EINTR, so the caller repeats the call; otherwise <paramref name="error"/>
    /// is the failure's errno (<see cref="Error.None"/> for a non-negative result). Written as
    /// <c>do r = call(); while (Interop.Interrupted(r, out error));</c>.
    /// </summary>
    internal static bool Interrupted(nint result, out Error error)
    {
        if (result >= 0)
        {
            error = Error.None;
            return false;
        }

        error = LastError;
        return error == Error.EINTR;
    }
}
