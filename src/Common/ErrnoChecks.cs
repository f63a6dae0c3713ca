using System.Diagnostics.CodeAnalysis;

/// <summary>
/// The checked side of the interop layer: turns a failed call's errno into the exception of the
/// assembly this file is compiled into, through that assembly's <c>ThrowHelper.ErrnoException</c>
/// (Vhost and VhostUserBackend raise <c>Vhost.VhostException</c>). Nothing here names a public type.
/// </summary>
internal static class ErrnoChecks
{
    /// <summary>The assembly's exception for <paramref name="error"/>.</summary>
    internal static Exception ExceptionFor(Interop.Error error, string operation, string? detail = null)
        => ThrowHelper.ErrnoException((int)error, operation, detail);

    /// <summary>Throws the exception for the last errno.</summary>
    [DoesNotReturn]
    internal static void ThrowLast(string operation, string? detail = null)
        => throw ExceptionFor(Interop.LastError, operation, detail);

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
