using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Vhost;

internal static partial class Interop
{
    /// <summary>Reads errno of the last import (all imports set <c>SetLastError = true</c>).</summary>
    internal static Errno LastErrno => (Errno)Marshal.GetLastPInvokeError();

    /// <summary>The single errno-to-exception funnel of the interop layer.</summary>
    internal static VhostException ExceptionFor(Errno errno, string operation, string? detail = null)
        => new(errno, operation, detail);

    /// <summary>Throws the exception for the last errno.</summary>
    [DoesNotReturn]
    internal static void ThrowLast(string operation, string? detail = null)
        => throw ExceptionFor(LastErrno, operation, detail);

    /// <summary>Returns <paramref name="result"/> when it is not negative, otherwise throws for errno.</summary>
    internal static int Check(int result, string operation, string? detail = null)
    {
        if (result < 0)
        {
            ThrowLast(operation, detail);
        }

        return result;
    }

    /// <summary>Returns <paramref name="result"/> when it is not negative, otherwise throws for errno.</summary>
    internal static nint Check(nint result, string operation, string? detail = null)
    {
        if (result < 0)
        {
            ThrowLast(operation, detail);
        }

        return result;
    }
}
